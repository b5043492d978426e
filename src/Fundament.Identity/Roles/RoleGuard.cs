using System.Security.Claims;
using Fundament.Http;
using Fundament.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fundament.Identity.Roles;

/// <summary>
/// The one rule against privilege escalation (docs/security.md): a principal never creates,
/// changes, rotates, resets or revokes a credential, role or account whose effective permissions
/// exceed its own. It may hand out a role only if it holds every permission the role grants, and
/// act on a user, client or role only if it holds every permission that one holds.
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
        var missing = await MissingAsync(caller, permissions, cancellationToken);
        return missing.Count == 0 ? RoleCheck.Ok : RoleCheck.Forbidden($"You cannot grant permissions you do not hold yourself: {string.Join(", ", missing)}.", missing);
    }

    /// <summary>May <paramref name="caller"/> act on a principal holding <paramref name="targetRoles"/> (<paramref name="what"/> names it in the answer)?</summary>
    public async Task<RoleCheck> CheckSubjectAsync(ClaimsPrincipal caller, IReadOnlyList<string> targetRoles, string what, CancellationToken cancellationToken)
    {
        var missing = await MissingAsync(caller, await roles.PermissionsOfAsync(targetRoles, cancellationToken), cancellationToken);
        return missing.Count == 0
            ? RoleCheck.Ok
            : RoleCheck.Forbidden($"You cannot change {what}: it holds permissions you do not hold yourself ({string.Join(", ", missing)}).", missing);
    }

    private async Task<IReadOnlyList<string>> MissingAsync(ClaimsPrincipal caller, IReadOnlySet<string> permissions, CancellationToken cancellationToken)
    {
        var held = await roles.PermissionsOfAsync(caller.RolesOf(), cancellationToken);
        return held.Contains(Permissions.All) ? [] : permissions.Where(p => !held.Contains(p)).Order(StringComparer.Ordinal).ToList();
    }

    private static string Truncate(string value) => value.Length > 64 ? value[..64] + "..." : value;
}

internal sealed record RoleCheck(bool Allowed, bool IsForbidden, string? Message, IReadOnlyList<string> Missing)
{
    public static readonly RoleCheck Ok = new(true, false, null, []);

    public static RoleCheck Invalid(string message) => new(false, false, message, []);

    public static RoleCheck Forbidden(string message, IReadOnlyList<string> missing) => new(false, true, message, missing);

    /// <summary>The 403 for a refusal, naming the missing permissions.</summary>
    public ProblemHttpResult Forbidden() => Problems.MissingPermissions(Message!, Missing);
}
