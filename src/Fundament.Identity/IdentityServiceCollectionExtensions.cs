using Fundament.Hosting;
using Fundament.Identity.ApiKeys;
using Fundament.Identity.Authentication;
using Fundament.Identity.Bootstrap;
using Fundament.Identity.Clients;
using Fundament.Identity.Login;
using Fundament.Identity.Passwords;
using Fundament.Identity.Quotas;
using Fundament.Identity.Roles;
using Fundament.Identity.Sessions;
using Fundament.Identity.Tokens;
using Fundament.Identity.Users;
using Fundament.Keys;
using Fundament.Quotas;
using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Fundament.Identity;

public static class IdentityServiceCollectionExtensions
{
    /// <summary>
    /// Module <c>identity</c>. Token validation (bearer and API key) is registered in every role,
    /// since every role authenticates callers; key rotation and the endpoints run where
    /// <see cref="MapIdentity"/> and <paramref name="runsControl"/> say.
    /// </summary>
    public static IServiceCollection AddIdentity(this IServiceCollection services, IConfiguration configuration, bool runsControl)
    {
        services.AddOptions<IdentityOptions>().Bind(configuration.GetSection(IdentityOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IdentityOptions>, IdentityOptionsValidator>());
        services.AddMigrations(new IdentityMigrations());

        services.TryAddSingleton<IssuerUri>();
        services.TryAddSingleton<PasswordHasher>();
        services.TryAddSingleton<PasswordPolicy>();
        services.TryAddSingleton<RoleStore>();
        services.TryAddSingleton<IRolePermissions>(sp => sp.GetRequiredService<RoleStore>());
        services.TryAddSingleton<RoleGuard>();
        services.TryAddSingleton<UserStore>();
        services.TryAddSingleton<SessionStore>();
        services.TryAddSingleton<ClientStore>();
        services.TryAddSingleton<ApiKeyStore>();
        services.TryAddSingleton<LoginThrottle>();
        services.TryAddSingleton<PasswordResetStore>();
        services.TryAddSingleton<SigningKeyStore>();
        services.TryAddSingleton<TokenIssuer>();
        services.TryAddSingleton<Fundament.Modules.IServiceTokenIssuer, ServiceTokenIssuer>();
        services.TryAddSingleton<LoginService>();
        services.TryAddSingleton<PrincipalStatus>();
        services.TryAddSingleton<IdentityMetrics>();
        services.TryAddSingleton<BootstrapAdmin>();
        services.TryAddSingleton<AdminRecovery>();
        services.AddOptions<QuotaOptions>().Bind(configuration.GetSection(QuotaOptions.SectionName));
        services.TryAddSingleton<QuotaStore>();
        services.TryAddSingleton<IQuotas, QuotaService>();
        services.TryAddSingleton<QuotasApi.Change>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IBoundGrants, QuotaBoundGrants>());
        services.TryAddSingleton<WatchSlots>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IQuotaMeter, WatchSlots>(sp => sp.GetRequiredService<WatchSlots>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IQuotaMeter, ApiKeyStore>(sp => sp.GetRequiredService<ApiKeyStore>()));

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, RoleStore>(sp => sp.GetRequiredService<RoleStore>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, SigningKeyStore>(sp => sp.GetRequiredService<SigningKeyStore>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, SigningKeyStore>(sp => sp.GetRequiredService<SigningKeyStore>()));
        if (runsControl)
        {
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, BootstrapAdmin>(sp => sp.GetRequiredService<BootstrapAdmin>()));
        }
        // Every role validates tokens, so every role keeps its key set fresh; only the key store decides to rotate.
        services.AddHostedService<SigningKeyRotationService>();

        services.AddPermissions(
            Permissions.UsersRead, Permissions.UsersWrite, Permissions.RolesRead, Permissions.RolesWrite,
            Permissions.ClientsRead, Permissions.ClientsWrite, Permissions.ApiKeysOwn, Permissions.QuotasRead, Permissions.QuotasWrite);
        services.AddFundamentAuthentication();
        return services;
    }

    public static IEndpointRouteBuilder MapIdentity(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapDiscoveryApi();
        endpoints.MapOAuthApi();
        endpoints.MapAuthApi();
        endpoints.MapMeApi();
        endpoints.MapUsersApi();
        endpoints.MapRolesApi();
        endpoints.MapClientsApi();
        endpoints.MapApiKeysApi();
        endpoints.MapQuotasApi();
        return endpoints;
    }
}
