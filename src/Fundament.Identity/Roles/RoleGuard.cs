using System.Security.Claims;

namespace Fundament.Identity.Roles;

/// <summary>
/// The one rule against privilege escalation (docs/security.md): a principal never creates,
/// changes, rotates, resets or revokes a credential, role or account whose effective permissions
/// exceed its own. It may hand out a role only if it holds every permission the role grants, and
/// act on a user, client or role only if it holds every permission that one holds.
/// </summary>
internal sealed class RoleGuard(RoleStore roles, IEnumerable<IBoundGrants> bound)
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
        var permissions = (await roles.PermissionsOfAsync(requested, cancellationToken)).ToHashSet(StringComparer.Ordinal);
        permissions.UnionWith(await BoundAsync(requested.Select(r => "role:" + r).ToList(), cancellationToken));
        return await CheckPermissionsAsync(caller, permissions, cancellationToken);
    }

    /// <summary>What other modules bind to these roles or principals by name (vault policies, registry grants, quota overrides).</summary>
    private async Task<IReadOnlySet<string>> BoundAsync(IReadOnlyCollection<string> subjects, CancellationToken cancellationToken)
    {
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (subjects.Count == 0)
        {
            return required;
        }
        foreach (var source in bound)
        {
            required.UnionWith(await source.RequiredForAsync(subjects, cancellationToken));
        }
        return required;
    }

    public async Task<RoleCheck> CheckPermissionsAsync(ClaimsPrincipal caller, IReadOnlySet<string> permissions, CancellationToken cancellationToken)
    {
        var missing = await MissingAsync(caller, permissions, cancellationToken);
        return missing.Count == 0 ? RoleCheck.Ok : RoleCheck.Forbidden($"You cannot grant permissions you do not hold yourself: {string.Join(", ", missing)}.", missing);
    }

    /// <summary>
    /// May <paramref name="caller"/> act on <paramref name="principal"/> (<c>user:&lt;id&gt;</c> or
    /// <c>client:&lt;id&gt;</c>), which holds <paramref name="targetRoles"/>? It must hold every
    /// permission those roles grant and whatever other modules bind to the principal or its roles.
    /// <paramref name="what"/> names the target in the answer.
    /// </summary>
    public async Task<RoleCheck> CheckSubjectAsync(ClaimsPrincipal caller, string principal, IReadOnlyList<string> targetRoles, string what, CancellationToken cancellationToken)
    {
        var permissions = (await roles.PermissionsOfAsync(targetRoles, cancellationToken)).ToHashSet(StringComparer.Ordinal);
        permissions.UnionWith(await BoundAsync([principal, .. targetRoles.Select(r => "role:" + r)], cancellationToken));
        var missing = await MissingAsync(caller, permissions, cancellationToken);
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
