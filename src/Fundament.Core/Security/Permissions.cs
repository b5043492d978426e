using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Security;

/// <summary>
/// Permission names. A role grants a set of them; every endpoint names the one it needs (or the
/// <see cref="Policies.Authenticated"/> / anonymous policies). Modules add their own with
/// <see cref="AddPermissions"/>.
/// </summary>
public static class Permissions
{
    /// <summary>Grants everything; held by the built-in <c>admin</c> role.</summary>
    public const string All = "*";

    public const string UsersRead = "users.read";
    public const string UsersWrite = "users.write";
    public const string RolesRead = "roles.read";
    public const string RolesWrite = "roles.write";
    public const string ClientsRead = "clients.read";
    public const string ClientsWrite = "clients.write";
    public const string ApiKeysOwn = "apikeys.own";
    public const string AuditRead = "audit.read";

    /// <summary>Read quota defaults, overrides and any user's usage.</summary>
    public const string QuotasRead = "quotas.read";

    /// <summary>Set quota overrides on roles, users and clients (only those whose permissions one holds).</summary>
    public const string QuotasWrite = "quotas.write";

    /// <summary>Subscribe webhooks to one's own events.</summary>
    public const string WebhooksOwn = "webhooks.own";

    /// <summary>Upload and manage one's own media.</summary>
    public const string MediaOwn = "media.own";

    /// <summary>Read media others shared with one.</summary>
    public const string MediaShared = "media.shared";

    /// <summary>Every asset, lifecycle policies and all webhooks.</summary>
    public const string MediaAdmin = "media.admin";

    /// <summary>Discovery: list services and instances (built-in role <c>service</c>).</summary>
    public const string RegistryRead = "registry.read";

    /// <summary>A service client registers instances of the service named like it (built-in role <c>service</c>).</summary>
    public const string RegistryRegisterOwn = "registry.register.own";

    /// <summary>A service client reads the configuration of the service named like it (built-in role <c>service</c>).</summary>
    public const string ConfigReadOwn = "config.read.own";

    private static readonly HashSet<string> Registered = new(StringComparer.Ordinal)
    {
        UsersRead, UsersWrite, RolesRead, RolesWrite, ClientsRead, ClientsWrite, ApiKeysOwn, AuditRead,
    };

    private static readonly Lock Gate = new();

    /// <summary>Every permission a role may grant.</summary>
    public static IReadOnlySet<string> Known
    {
        get
        {
            lock (Gate)
            {
                return Registered.ToHashSet(StringComparer.Ordinal);
            }
        }
    }

    /// <summary>Registers permissions and one authorization policy per permission, named after it.</summary>
    public static IServiceCollection AddPermissions(this IServiceCollection services, params string[] permissions)
    {
        lock (Gate)
        {
            foreach (var permission in permissions)
            {
                Registered.Add(permission);
            }
        }
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAuthorizationHandler, PermissionAuthorizationHandler>());
        services.Configure<AuthorizationOptions>(options =>
        {
            foreach (var permission in permissions)
            {
                options.AddPolicy(permission, policy => policy.RequireAuthenticatedUser().AddRequirements(new PermissionRequirement(permission)));
            }
        });
        return services;
    }
}

/// <summary>Policies that are not a single permission.</summary>
public static class Policies
{
    /// <summary>Any authenticated user, client or API key.</summary>
    public const string Authenticated = "authenticated";
}
