using Fundament.Keys;
using Fundament.Security;
using Fundament.Storage;
using Fundament.Vault.Policies;
using Fundament.Vault.Secrets;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Vault;

public static class VaultServiceCollectionExtensions
{
    /// <summary>Module <c>vault</c>.</summary>
    public static IServiceCollection AddVault(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<VaultOptions>()
            .Bind(configuration.GetSection(VaultOptions.SectionName))
            .Validate(o => o.DefaultMaxVersions is >= 1 and <= 1000, "Fundament:Vault:DefaultMaxVersions must be between 1 and 1000.")
            .Validate(o => o.MaxValueBytes is >= 1024 and <= 1024 * 1024, "Fundament:Vault:MaxValueBytes must be between 1024 and 1048576.")
            .ValidateOnStart();
        services.AddMigrations(new VaultMigrations());
        services.TryAddSingleton<SecretStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, SecretStore>(sp => sp.GetRequiredService<SecretStore>()));
        services.TryAddSingleton<PolicyStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Fundament.Security.IBoundGrants, Fundament.Vault.Policies.VaultBoundGrants>());
        services.TryAddSingleton<VaultMetrics>();
        services.TryAddSingleton<VaultAuditor>();
        services.TryAddSingleton<Fundament.Modules.ISecretDirectory, SecretDirectory>();
        services.AddPermissions(VaultPermissions.Admin, VaultPermissions.Policies);
        return services;
    }

    public static IEndpointRouteBuilder MapVault(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapSecretsApi();
        endpoints.MapSecretPoliciesApi();
        endpoints.MapVaultAdminApi();
        return endpoints;
    }
}
