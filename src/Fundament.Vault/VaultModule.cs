using Fundament.Core.Keys;
using Fundament.Vault.Policies;
using Fundament.Vault.Secrets;

namespace Fundament.Vault;

/// <summary>Module <c>vault</c>: versioned, envelope-encrypted secrets behind path policies.</summary>
public sealed class VaultModule : FundamentModule
{
    public override string Name => "vault";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(VaultPermissions.Admin, "Every secret, and the vault's administration (master key rotation)."),
        new(VaultPermissions.Policies, "Create, change and delete secret policies (never beyond one's own reach)."),
    ];

    public override IReadOnlyList<EventTypeDefinition> EventTypes { get; } =
    [
        new(VaultEvents.Created, "A secret's first version was written; data holds path, version, by and at (never the value). Audience system; subscribing needs vault.admin.",
            VaultPermissions.Admin),
        new(VaultEvents.Rotated, "A new version of a secret was written; data holds path, version, by and at (never the value). Audience system; subscribing needs vault.admin.",
            VaultPermissions.Admin),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<VaultOptions, VaultOptionsValidator>(context.Configuration, VaultOptions.SectionName);
        services.TryAddSingleton<SecretStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, SecretStore>(sp => sp.GetRequiredService<SecretStore>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Fundament.Core.Backup.IBackupCheck, VaultBackupCheck>());
        services.TryAddSingleton<SecretPolicyStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IBoundGrants, VaultBoundGrants>());
        services.TryAddSingleton<VaultMetrics>();
        services.TryAddSingleton<VaultAuditor>();
        services.TryAddSingleton<ISecretDirectory, SecretDirectory>();
        services.TryAddSingleton<IPlatformSecrets, PlatformSecrets>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAlertConditionSource, VaultAlertConditions>());
        services.TryAddSingleton<VaultEventPublisher>();
        if (context.Runs(FundamentRoles.Control) && context.Enabled(VaultOptions.SectionName, nameof(VaultOptions.EventsEnabled)))
        {
            services.AddHostedService(sp => sp.GetRequiredService<VaultEventPublisher>());
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapSecretsApi();
        endpoints.MapSecretPoliciesApi();
        endpoints.MapVaultAdminApi();
    }
}
