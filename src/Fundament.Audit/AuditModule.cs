using Fundament.Core.Keys;

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
        services.TryAddSingleton<AuditLog>();
        services.TryAddSingleton<IAuditLog>(sp => sp.GetRequiredService<AuditLog>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, AuditLog>(sp => sp.GetRequiredService<AuditLog>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, AuditLog>(sp => sp.GetRequiredService<AuditLog>()));
        services.AddHostedService<AuditChainWriter>();
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapAuditApi();
}
