using System.Security.Claims;
using System.Text.Json;
using Dapper;

namespace Fundament.Core.Security;

/// <summary>
/// Grants by name prefix: a principal (<c>client:&lt;id&gt;</c>, <c>user:&lt;id&gt;</c> or
/// <c>role:&lt;name&gt;</c>) may use some capabilities on every name under a prefix (streams of the
/// event store, topics of the bus). Nothing is allowed without a grant, except to holders of the
/// module's administrator permission (and <c>*</c>). The vault's path policies, for names.
/// </summary>
/// <remarks>
/// Each module keeps its grants in its own table (<c>id, principal, &lt;prefix column&gt;,
/// capabilities, created_at, created_by</c>) and names it here; the rules are one.
/// </remarks>
public abstract class PrefixGrantStore(IDatabase database, IRolePermissions rolePermissions, TimeProvider time)
{
    /// <summary>The module's grant table.</summary>
    protected abstract string Table { get; }

    /// <summary>The column holding the prefix.</summary>
    protected abstract string PrefixColumn { get; }

    /// <summary>The permission that allows everything without a grant.</summary>
    protected abstract string AdminPermission { get; }

    private string Columns => $"id AS Id, principal AS Principal, {PrefixColumn} AS Prefix, capabilities AS Capabilities, created_at AS CreatedAt, created_by AS CreatedBy";

    public async Task<PrefixGrant> CreateAsync(string principal, string prefix, IReadOnlyList<string> capabilities, string? createdBy, CancellationToken cancellationToken)
    {
        var grant = new PrefixGrant(Guid.CreateVersion7().ToString(), principal, prefix, capabilities, time.GetUtcNow(), createdBy);
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(database.Command(
            $"INSERT INTO {Table} (id, principal, {PrefixColumn}, capabilities, created_at, created_by) VALUES (@Id, @Principal, @Prefix, @capabilities, @createdAt, @CreatedBy)",
            new { grant.Id, grant.Principal, grant.Prefix, capabilities = JsonSerializer.Serialize(capabilities), createdAt = grant.CreatedAt.ToUnixTimeMilliseconds(), grant.CreatedBy },
            cancellationToken: cancellationToken));
        return grant;
    }

    /// <summary>One page of grants by id, after <paramref name="after"/>.</summary>
    public async Task<IReadOnlyList<PrefixGrant>> ListAsync(string? principal, string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<GrantRow>(database.Command(
            $"SELECT {Columns} FROM {Table} WHERE (@principal IS NULL OR principal = @principal) AND (@after IS NULL OR id > @after) ORDER BY id LIMIT @take",
            new { principal, after, take }, cancellationToken: cancellationToken))).Select(r => r.ToGrant()).ToList();
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(database.Command($"DELETE FROM {Table} WHERE id = @id", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>What the caller may do, loaded once per request.</summary>
    public async Task<PrefixAccess> AccessForAsync(ClaimsPrincipal user, CancellationToken cancellationToken)
    {
        var roles = user.RolesOf();
        var permissions = await rolePermissions.PermissionsOfAsync(roles, cancellationToken);
        if (permissions.Contains(Permissions.All) || permissions.Contains(AdminPermission))
        {
            return PrefixAccess.Everything;
        }
        var principals = roles.Select(r => "role:" + r).ToList();
        // As in the vault: an API key acts with its scoped roles, not with its owner's personal grants.
        if (user.ActorId() is { } actor && user.FindFirst(FundamentClaims.AuthMethod)?.Value != "apikey")
        {
            principals.Add(actor);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<GrantRow>(database.Command(
            $"SELECT {Columns} FROM {Table} WHERE {database.Dialect.InList("principal", "principals")}",
            new { principals = principals.ToArray() }, cancellationToken: cancellationToken));
        return new PrefixAccess(rows.Select(r => r.ToGrant()).ToList());
    }

    /// <summary>Whether <paramref name="principal"/> names a grantee: <c>user:&lt;id&gt;</c>, <c>client:&lt;id&gt;</c> or <c>role:&lt;name&gt;</c>, up to 200 characters.</summary>
    public static bool IsPrincipal(string? principal) =>
        principal is { Length: > 0 and <= 200 }
        && (principal.StartsWith("user:", StringComparison.Ordinal) || principal.StartsWith("client:", StringComparison.Ordinal) || principal.StartsWith("role:", StringComparison.Ordinal));

    private sealed class GrantRow
    {
        public string Id { get; init; } = "";
        public string Principal { get; init; } = "";
        public string Prefix { get; init; } = "";
        public string Capabilities { get; init; } = "[]";
        public long CreatedAt { get; init; }
        public string? CreatedBy { get; init; }

        public PrefixGrant ToGrant() => new(Id, Principal, Prefix, JsonSerializer.Deserialize<string[]>(Capabilities) ?? [],
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), CreatedBy);
    }
}

/// <summary>One grant as stored.</summary>
public sealed record PrefixGrant(string Id, string Principal, string Prefix, IReadOnlyList<string> Capabilities, DateTimeOffset CreatedAt, string? CreatedBy);

/// <summary>The caller's grants.</summary>
public sealed class PrefixAccess(IReadOnlyList<PrefixGrant> grants, bool everything = false)
{
    public static readonly PrefixAccess Everything = new([], everything: true);

    /// <summary>Holds the module's administrator permission (or <c>*</c>): every name, and every principal's consumers.</summary>
    public bool IsAdministrator => everything;

    /// <summary>Whether <paramref name="capability"/> is granted on <paramref name="name"/>.</summary>
    public bool Allows(string capability, string name) =>
        everything || grants.Any(g => g.Capabilities.Contains(capability) && name.StartsWith(g.Prefix, StringComparison.Ordinal));

    /// <summary>Whether <paramref name="capability"/> is granted on every name starting with <paramref name="prefix"/>.</summary>
    public bool AllowsEvery(string capability, string prefix) =>
        everything || grants.Any(g => g.Capabilities.Contains(capability) && prefix.StartsWith(g.Prefix, StringComparison.Ordinal));
}
