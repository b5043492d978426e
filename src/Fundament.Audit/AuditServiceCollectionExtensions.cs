using Fundament.Hosting;
using Fundament.Keys;
using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Audit;

public static class AuditServiceCollectionExtensions
{
    /// <summary>Module <c>audit</c>: the log every other module appends to.</summary>
    public static IServiceCollection AddAudit(this IServiceCollection services)
    {
        services.AddMigrations(new AuditMigrations());
        services.TryAddSingleton<AuditLog>();
        services.TryAddSingleton<IAuditLog>(sp => sp.GetRequiredService<AuditLog>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, AuditLog>(sp => sp.GetRequiredService<AuditLog>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, AuditLog>(sp => sp.GetRequiredService<AuditLog>()));
        services.AddHostedService<AuditChainWriter>();
        services.AddPermissions(Permissions.AuditRead);
        return services;
    }

    public static IEndpointRouteBuilder MapAudit(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapAuditApi();
        return endpoints;
    }
}
