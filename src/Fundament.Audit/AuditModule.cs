using Fundament.Hosting;
using Fundament.Keys;
using Fundament.Modules;
using Fundament.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Audit;

/// <summary>Module <c>audit</c>: the hash-chained log every other module appends to, in every role.</summary>
public sealed class AuditModule : FundamentModule
{
    public override string Name => "audit";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(AuditPermissions.Read, "Read and verify the audit log."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddMigrations(new AuditMigrations());
        services.TryAddSingleton<AuditLog>();
        services.TryAddSingleton<IAuditLog>(sp => sp.GetRequiredService<AuditLog>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, AuditLog>(sp => sp.GetRequiredService<AuditLog>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, AuditLog>(sp => sp.GetRequiredService<AuditLog>()));
        services.AddHostedService<AuditChainWriter>();
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapAuditApi();
}
