using System.Security.Claims;
using System.Text.Json;
using Dapper;
using Fundament.Vault.Secrets;

namespace Fundament.Vault.Policies;

/// <summary>
/// Path policies: a principal (<c>client:&lt;id&gt;</c>, <c>user:&lt;id&gt;</c> or <c>role:&lt;name&gt;</c>)
/// may use capabilities on every path under a prefix. Nothing is allowed without a policy, except
/// to holders of the <c>vault.admin</c> permission (and <c>*</c>).
/// </summary>
internal sealed class SecretPolicyStore(IDatabase database, IRolePermissions rolePermissions, TimeProvider time)
{
    public static readonly IReadOnlySet<string> Capabilities = new HashSet<string>(StringComparer.Ordinal) { "read", "write", "list", "delete" };

    public async Task<PolicyResponse> CreateAsync(string principal, string pathPrefix, IReadOnlyList<string> capabilities, string? createdBy, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7().ToString();
        var now = time.GetUtcNow();
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO vault_policies (id, principal, path_prefix, capabilities, created_at, created_by) VALUES (@id, @principal, @pathPrefix, @capabilities, @now, @createdBy)",
            new { id, principal, pathPrefix, capabilities = JsonSerializer.Serialize(capabilities), now = now.ToUnixTimeMilliseconds(), createdBy },
            cancellationToken: cancellationToken));
        return new PolicyResponse(id, principal, pathPrefix, capabilities, now, createdBy);
    }

    public async Task<IReadOnlyList<PolicyResponse>> ListAsync(string? principal, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<PolicyRow>(new CommandDefinition(
            "SELECT id, principal, path_prefix AS PathPrefix, capabilities, created_at AS CreatedAt, created_by AS CreatedBy FROM vault_policies WHERE (@principal IS NULL OR principal = @principal) ORDER BY principal, path_prefix",
            new { principal }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToResponse()).ToList();
    }

    /// <summary>
    /// One page of policies (of <paramref name="principal"/>, or all) by principal, path prefix and
    /// id (which makes the key unique), after the cursor of <see cref="Cursor"/>; at most <paramref name="take"/>.
    /// </summary>
    public async Task<IReadOnlyList<PolicyResponse>> ListAsync(string? principal, string? after, int take, CancellationToken cancellationToken)
    {
        var cursor = after is null ? null : Paging.Split(after, 3);
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<PolicyRow>(new CommandDefinition("""
            SELECT id, principal, path_prefix AS PathPrefix, capabilities, created_at AS CreatedAt, created_by AS CreatedBy FROM vault_policies
            WHERE (@principal IS NULL OR principal = @principal)
              AND (@afterPrincipal IS NULL OR (principal, path_prefix, id) > (@afterPrincipal, @afterPrefix, @afterId))
            ORDER BY principal, path_prefix, id LIMIT @take
            """, new { principal, afterPrincipal = cursor?[0], afterId = cursor?[1], afterPrefix = cursor?[2], take }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToResponse()).ToList();
    }

    /// <summary>The paging cursor of a policy: principal and id (never a space in either), then the path prefix.</summary>
    public static string Cursor(PolicyResponse policy) => Paging.Compose(policy.Principal, policy.Id, policy.PathPrefix);

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM vault_policies WHERE id = @id", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>What the caller may do, loaded once per request.</summary>
    public async Task<VaultAccess> AccessForAsync(ClaimsPrincipal user, CancellationToken cancellationToken)
    {
        var roles = user.RolesOf();
        var permissions = await rolePermissions.PermissionsOfAsync(roles, cancellationToken);
        if (permissions.Contains(Permissions.All) || permissions.Contains(VaultPermissions.Admin))
        {
            return VaultAccess.Everything;
        }
        var principals = roles.Select(r => "role:" + r).ToList();
        // An API key acts with the roles it was scoped to; the owner's personal (user:) policies
        // would let a narrowly scoped key read whatever its owner can.
        if (user.ActorId() is { } actor && user.FindFirst(FundamentClaims.AuthMethod)?.Value != "apikey")
        {
            principals.Add(actor);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<PolicyRow>(new CommandDefinition(
            $"SELECT id, principal, path_prefix AS PathPrefix, capabilities, created_at AS CreatedAt, created_by AS CreatedBy FROM vault_policies WHERE {database.Dialect.InList("principal", "principals")}",
            new { principals = principals.ToArray() }, cancellationToken: cancellationToken));
        return new VaultAccess(rows.Select(r => r.ToResponse()).ToList());
    }

    private sealed class PolicyRow
    {
        public string Id { get; init; } = "";
        public string Principal { get; init; } = "";
        public string PathPrefix { get; init; } = "";
        public string Capabilities { get; init; } = "[]";
        public long CreatedAt { get; init; }
        public string? CreatedBy { get; init; }

        public PolicyResponse ToResponse() => new(Id, Principal, PathPrefix, JsonSerializer.Deserialize<string[]>(Capabilities) ?? [],
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), CreatedBy);
    }
}

/// <summary>The policies that apply to one caller.</summary>
internal sealed class VaultAccess(IReadOnlyList<PolicyResponse> policies, bool everything = false)
{
    public static readonly VaultAccess Everything = new([], everything: true);

    public bool Allows(string capability, string path) =>
        everything || policies.Any(p => p.Capabilities.Contains(capability) && SecretPath.Covers(p.PathPrefix, path));

    /// <summary>Whether the caller holds <paramref name="capability"/> on every path under <paramref name="prefix"/> (so it may grant it there).</summary>
    public bool AllowsEverywhereUnder(string capability, string prefix) =>
        everything || policies.Any(p => p.Capabilities.Contains(capability) && (p.PathPrefix.Length == 0 || (prefix.Length > 0 && SecretPath.Covers(p.PathPrefix, prefix.TrimEnd('/')))));

    /// <summary>What of <paramref name="capabilities"/> on <paramref name="prefix"/> the caller does not hold, as <c>vault:&lt;capability&gt;:&lt;prefix&gt;</c>.</summary>
    public IReadOnlyList<string> Missing(IEnumerable<string> capabilities, string prefix) =>
        capabilities.Where(c => !AllowsEverywhereUnder(c, prefix)).Select(c => $"vault:{c}:{(prefix.Length == 0 ? "*" : prefix)}").ToList();
}

/// <summary>A vault policy.</summary>
public sealed record PolicyResponse(string Id, string Principal, string PathPrefix, IReadOnlyList<string> Capabilities, DateTimeOffset CreatedAt, string? CreatedBy);

/// <summary>Body of <c>POST /api/v1/secret-policies</c>.</summary>
/// <param name="Principal">Required: <c>client:&lt;id&gt;</c>, <c>user:&lt;id&gt;</c> or <c>role:&lt;name&gt;</c>.</param>
/// <param name="PathPrefix">Required (may be empty for every path); matched on '/' boundaries.</param>
/// <param name="Capabilities">Required: any of read, write, list, delete.</param>
public sealed record CreatePolicyRequest(string? Principal, string? PathPrefix, IReadOnlyList<string>? Capabilities);
