using System.Security.Claims;
using Fundament.Security;

namespace Fundament.Identity.Roles;

/// <summary>
/// Stops privilege escalation: a caller may hand out a role (to a user, client or API key, or as
/// the permissions of a new role) only if they already hold every permission it grants.
/// </summary>
internal sealed class RoleGuard(RoleStore roles)
{
    public async Task<RoleCheck> CheckAssignableAsync(ClaimsPrincipal caller, IReadOnlyList<string> requested, CancellationToken cancellationToken)
    {
        foreach (var role in requested)
        {
            if (!await roles.ExistsAsync(role, cancellationToken))
            {
                return RoleCheck.Invalid($"Role '{Truncate(role)}' does not exist.");
            }
        }
        return await CheckPermissionsAsync(caller, await roles.PermissionsOfAsync(requested, cancellationToken), cancellationToken);
    }

    public async Task<RoleCheck> CheckPermissionsAsync(ClaimsPrincipal caller, IReadOnlySet<string> permissions, CancellationToken cancellationToken)
    {
        var held = await roles.PermissionsOfAsync(caller.RolesOf(), cancellationToken);
        if (held.Contains(Permissions.All) || permissions.All(held.Contains))
        {
            return RoleCheck.Ok;
        }
        return RoleCheck.Forbidden("You cannot grant permissions you do not hold yourself.");
    }

    private static string Truncate(string value) => value.Length > 64 ? value[..64] + "..." : value;
}

internal sealed record RoleCheck(bool Allowed, bool IsForbidden, string? Message)
{
    public static readonly RoleCheck Ok = new(true, false, null);

    public static RoleCheck Invalid(string message) => new(false, false, message);

    public static RoleCheck Forbidden(string message) => new(false, true, message);
}
