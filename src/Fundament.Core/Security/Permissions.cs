using Microsoft.AspNetCore.Authorization;

namespace Fundament.Core.Security;

/// <summary>
/// Permission names the platform itself knows. Every other permission belongs to the module that
/// declares it (<see cref="FundamentModule.Permissions"/>) and is known through <see cref="PermissionCatalog"/>.
/// </summary>
public static class Permissions
{
    /// <summary>Grants everything; held by the built-in <c>admin</c> role.</summary>
    public const string All = "*";
}

/// <summary>The roles every installation has. Modules name them in <see cref="PermissionDefinition.BuiltInRoles"/>.</summary>
public static class BuiltInRoles
{
    /// <summary>Grants <see cref="Permissions.All"/>.</summary>
    public const string Admin = "admin";

    /// <summary>A person using the platform.</summary>
    public const string User = "user";

    /// <summary>Read-only access to what is shared with them.</summary>
    public const string Guest = "guest";

    /// <summary>A service's own client.</summary>
    public const string Service = "service";
}

/// <summary>Policies that are not a single permission.</summary>
public static class Policies
{
    /// <summary>Any authenticated user, client or API key.</summary>
    public const string Authenticated = "authenticated";
}

/// <summary>Every permission the modules of this host declare, whatever roles this node runs.</summary>
public sealed class PermissionCatalog
{
    public PermissionCatalog(IEnumerable<IPermissionSource> sources)
    {
        var all = new Dictionary<string, PermissionDefinition>(StringComparer.Ordinal);
        foreach (var permission in sources.SelectMany(s => s.Permissions))
        {
            if (!all.TryAdd(permission.Name, permission) && !Same(all[permission.Name], permission))
            {
                throw new InvalidOperationException($"Permission '{permission.Name}' is declared twice, differently.");
            }
        }
        Definitions = all.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        Known = all.Keys.ToHashSet(StringComparer.Ordinal);
    }

    // The record's own equality compares BuiltInRoles by reference; two modules declaring the same permission alike are the same.
    private static bool Same(PermissionDefinition a, PermissionDefinition b) =>
        a.Name == b.Name && a.Description == b.Description && a.BuiltInRoles.SequenceEqual(b.BuiltInRoles, StringComparer.Ordinal);

    public IReadOnlyList<PermissionDefinition> Definitions { get; }

    /// <summary>Every permission a role may grant.</summary>
    public IReadOnlySet<string> Known { get; }

    /// <summary>The permissions built-in role <paramref name="role"/> grants.</summary>
    public string[] GrantedTo(string role) =>
        Definitions.Where(p => p.BuiltInRoles.Contains(role, StringComparer.Ordinal)).Select(p => p.Name).ToArray();
}

/// <summary>One authorization policy per permission, named after it.</summary>
internal sealed class PermissionPolicies(PermissionCatalog catalog) : IConfigureOptions<AuthorizationOptions>
{
    public void Configure(AuthorizationOptions options)
    {
        foreach (var permission in catalog.Known)
        {
            options.AddPolicy(permission, policy => policy.RequireAuthenticatedUser().AddRequirements(new PermissionRequirement(permission)));
        }
    }
}
