using System.Security.Claims;
using System.Text.Json;
using Dapper;

namespace Fundament.Events.Storage;

/// <summary>
/// Stream grants: a principal (<c>client:&lt;id&gt;</c>, <c>user:&lt;id&gt;</c> or <c>role:&lt;name&gt;</c>)
/// may read or append on every stream under a prefix. Nothing is allowed without a grant, except to
/// holders of <see cref="EventsPermissions.Admin"/> (and <c>*</c>). The vault's path policies, for streams.
/// </summary>
internal sealed class StreamGrantStore(IDatabase database, IRolePermissions rolePermissions, TimeProvider time)
{
    public const string Read = "read";
    public const string Append = "append";

    public static readonly IReadOnlyList<string> Capabilities = [Read, Append];

    public async Task<StreamGrant> CreateAsync(string principal, string prefix, IReadOnlyList<string> capabilities, string? createdBy, CancellationToken cancellationToken)
    {
        var grant = new StreamGrant(Guid.CreateVersion7().ToString(), principal, prefix, capabilities, time.GetUtcNow(), createdBy);
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(database.Command(
            "INSERT INTO events_grants (id, principal, stream_prefix, capabilities, created_at, created_by) VALUES (@Id, @Principal, @StreamPrefix, @capabilities, @createdAt, @CreatedBy)",
            new { grant.Id, grant.Principal, grant.StreamPrefix, capabilities = JsonSerializer.Serialize(capabilities), createdAt = grant.CreatedAt.ToUnixTimeMilliseconds(), grant.CreatedBy },
            cancellationToken: cancellationToken));
        return grant;
    }

    /// <summary>One page of grants by id, after <paramref name="after"/>.</summary>
    public async Task<IReadOnlyList<StreamGrant>> ListAsync(string? principal, string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<GrantRow>(database.Command("""
            SELECT id AS Id, principal AS Principal, stream_prefix AS StreamPrefix, capabilities AS Capabilities, created_at AS CreatedAt, created_by AS CreatedBy
            FROM events_grants WHERE (@principal IS NULL OR principal = @principal) AND (@after IS NULL OR id > @after) ORDER BY id LIMIT @take
            """, new { principal, after, take }, cancellationToken: cancellationToken))).Select(r => r.ToGrant()).ToList();
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(database.Command("DELETE FROM events_grants WHERE id = @id", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>What the caller may do, loaded once per request.</summary>
    public async Task<StreamAccess> AccessForAsync(ClaimsPrincipal user, CancellationToken cancellationToken)
    {
        var roles = user.RolesOf();
        var permissions = await rolePermissions.PermissionsOfAsync(roles, cancellationToken);
        if (permissions.Contains(Permissions.All) || permissions.Contains(EventsPermissions.Admin))
        {
            return StreamAccess.Everything;
        }
        var principals = roles.Select(r => "role:" + r).ToList();
        // As in the vault: an API key acts with its scoped roles, not with its owner's personal grants.
        if (user.ActorId() is { } actor && user.FindFirst(FundamentClaims.AuthMethod)?.Value != "apikey")
        {
            principals.Add(actor);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<GrantRow>(database.Command(
            $"SELECT id AS Id, principal AS Principal, stream_prefix AS StreamPrefix, capabilities AS Capabilities, created_at AS CreatedAt, created_by AS CreatedBy FROM events_grants WHERE {database.Dialect.InList("principal", "principals")}",
            new { principals = principals.ToArray() }, cancellationToken: cancellationToken));
        return new StreamAccess(rows.Select(r => r.ToGrant()).ToList());
    }

    private sealed class GrantRow
    {
        public string Id { get; init; } = "";
        public string Principal { get; init; } = "";
        public string StreamPrefix { get; init; } = "";
        public string Capabilities { get; init; } = "[]";
        public long CreatedAt { get; init; }
        public string? CreatedBy { get; init; }

        public StreamGrant ToGrant() => new(Id, Principal, StreamPrefix, JsonSerializer.Deserialize<string[]>(Capabilities) ?? [],
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), CreatedBy);
    }
}

/// <summary>The caller's grants.</summary>
internal sealed class StreamAccess(IReadOnlyList<StreamGrant> grants, bool everything = false)
{
    public static readonly StreamAccess Everything = new([], everything: true);

    /// <summary>Holds <see cref="EventsPermissions.Admin"/> (or <c>*</c>): every stream, and every principal's subscriptions.</summary>
    public bool IsAdministrator => everything;

    /// <summary>Whether <paramref name="capability"/> is granted on <paramref name="stream"/>.</summary>
    public bool Allows(string capability, string stream) =>
        everything || grants.Any(g => g.Capabilities.Contains(capability) && stream.StartsWith(g.StreamPrefix, StringComparison.Ordinal));

    /// <summary>Whether <paramref name="capability"/> is granted on every stream starting with <paramref name="prefix"/> (for <c>$all</c> reads).</summary>
    public bool AllowsEvery(string capability, string prefix) =>
        everything || grants.Any(g => g.Capabilities.Contains(capability) && prefix.StartsWith(g.StreamPrefix, StringComparison.Ordinal));
}
