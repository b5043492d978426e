using Fundament.Core.Keys;
using Fundament.Core.Quotas;
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

namespace Fundament.Identity;

/// <summary>
/// Module <c>identity</c>: users, roles, clients, API keys, tokens and quotas. Token validation
/// (bearer and API key) and signing-key refresh are registered in every role, since every role
/// authenticates callers; the bootstrap administrator and the endpoints belong to control nodes.
/// </summary>
public sealed class IdentityModule : FundamentModule
{
    public override string Name => "identity";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(IdentityPermissions.UsersRead, "List and read user accounts."),
        new(IdentityPermissions.UsersWrite, "Create, change, lock and delete user accounts (never granting more than one holds)."),
        new(IdentityPermissions.RolesRead, "List roles and the permissions they grant."),
        new(IdentityPermissions.RolesWrite, "Create and change roles (only with permissions one holds)."),
        new(IdentityPermissions.ClientsRead, "List and read service clients."),
        new(IdentityPermissions.ClientsWrite, "Create, change, rotate and delete service clients."),
        new(IdentityPermissions.ApiKeysOwn, "Create and revoke one's own API keys.", BuiltInRoles.User),
        new(IdentityPermissions.QuotasRead, "Read quota defaults, overrides and anyone's usage."),
        new(IdentityPermissions.QuotasWrite, "Set quota overrides on roles, users and clients whose permissions one holds."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<IdentityOptions, IdentityOptionsValidator>(context.Configuration, IdentityOptions.SectionName);

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
        services.TryAddSingleton<IServiceTokenIssuer, ServiceTokenIssuer>();
        services.TryAddSingleton<LoginService>();
        services.TryAddSingleton<Mfa.MfaStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, Mfa.MfaStore>(sp => sp.GetRequiredService<Mfa.MfaStore>()));
        services.TryAddSingleton<PrincipalStatus>();
        services.TryAddSingleton<IdentityMetrics>();
        services.TryAddSingleton<BootstrapAdmin>();
        services.TryAddSingleton<IBootstrapAdmin>(sp => sp.GetRequiredService<BootstrapAdmin>());
        services.TryAddSingleton<AdminRecovery>();
        services.TryAddSingleton<IAdminRecovery>(sp => sp.GetRequiredService<AdminRecovery>());
        services.AddOptions<QuotaOptions>().Bind(context.Configuration.GetSection(QuotaOptions.SectionName));
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
        if (context.Runs(FundamentRoles.Control))
        {
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, BootstrapAdmin>(sp => sp.GetRequiredService<BootstrapAdmin>()));
        }
        // Every role validates tokens, so every role keeps its key set fresh; only the key store decides to rotate.
        services.AddHostedService<SigningKeyRotationService>();
        services.AddFundamentAuthentication();
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapDiscoveryApi();
        endpoints.MapOAuthApi();
        endpoints.MapAuthApi();
        endpoints.MapMeApi();
        Mfa.MfaApi.MapMfaApi(endpoints);
        endpoints.MapUsersApi();
        endpoints.MapRolesApi();
        endpoints.MapClientsApi();
        endpoints.MapApiKeysApi();
        endpoints.MapQuotasApi();
    }
}
