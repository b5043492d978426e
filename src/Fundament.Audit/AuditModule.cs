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
        services.AddSettings<AuditOptions, AuditOptionsValidator>(context.Configuration, AuditOptions.SectionName);
        services.TryAddSingleton<AuditVerifier>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Fundament.Core.Backup.IBackupCheck, AuditBackupCheck>());
        if (context.Runs(FundamentRoles.Control) && context.Configuration.GetValue(AuditOptions.SectionName + ":" + nameof(AuditOptions.VerifyInterval), TimeSpan.FromHours(1)) > TimeSpan.Zero)
        {
            services.AddHostedService(sp => sp.GetRequiredService<AuditVerifier>());
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapAuditApi();
}
