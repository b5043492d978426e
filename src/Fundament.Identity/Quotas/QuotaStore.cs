using Dapper;

namespace Fundament.Identity.Quotas;

/// <summary>
/// Quota overrides: per role (<c>scope = 'role'</c>, subject the role name) and per principal
/// (<c>scope = 'principal'</c>, subject <c>user:&lt;id&gt;</c> or <c>client:&lt;id&gt;</c>). A row
/// with a null limit means unlimited; no row means the next level decides.
/// </summary>
internal sealed class QuotaStore(IDatabase database, TimeProvider time)
{
    public const string RoleScope = "role";
    public const string PrincipalScope = "principal";

    /// <summary>The overrides of <paramref name="quota"/> for the principal and its roles.</summary>
    public async Task<IReadOnlyList<QuotaOverride>> ForAsync(string actor, IReadOnlyList<string> roles, string? quota, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<QuotaOverride>(new CommandDefinition($"""
            SELECT scope AS Scope, subject AS Subject, quota AS Quota, quota_limit AS QuotaLimit, updated_at AS UpdatedAt, updated_by AS UpdatedBy
            FROM identity_quotas
            WHERE ((scope = 'principal' AND subject = @actor) OR (scope = 'role' AND {database.Dialect.InList("subject", "roles")}))
              AND (@quota IS NULL OR quota = @quota)
            """, new { actor, roles = roles.ToArray(), quota }, cancellationToken: cancellationToken));
        return rows.ToList();
    }

    /// <summary>Every override, ordered by scope, subject and quota, a page at a time.</summary>
    public async Task<IReadOnlyList<QuotaOverride>> ListAsync(string? scope, string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<QuotaOverride>(new CommandDefinition("""
            SELECT scope AS Scope, subject AS Subject, quota AS Quota, quota_limit AS QuotaLimit, updated_at AS UpdatedAt, updated_by AS UpdatedBy
            FROM identity_quotas
            WHERE (@scope IS NULL OR scope = @scope) AND (@after IS NULL OR scope || '/' || subject || '/' || quota > @after)
            ORDER BY scope || '/' || subject || '/' || quota
            LIMIT @take
            """, new { scope, after, take }, cancellationToken: cancellationToken));
        return rows.ToList();
    }

    public async Task SetAsync(string scope, string subject, string quota, long? limit, string actor, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO identity_quotas (scope, subject, quota, quota_limit, updated_at, updated_by) VALUES (@scope, @subject, @quota, @limit, @now, @actor)
            ON CONFLICT (scope, subject, quota) DO UPDATE SET quota_limit = excluded.quota_limit, updated_at = excluded.updated_at, updated_by = excluded.updated_by
            """, new { scope, subject, quota, limit, now = time.GetUtcNow().ToUnixTimeMilliseconds(), actor }, cancellationToken: cancellationToken));
    }

    public async Task<bool> RemoveAsync(string scope, string subject, string quota, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM identity_quotas WHERE scope = @scope AND subject = @subject AND quota = @quota",
            new { scope, subject, quota }, cancellationToken: cancellationToken)) > 0;
    }

    /// <summary>Drops every override of a deleted role or principal, so a later one of the same name starts clean.</summary>
    public async Task ForgetAsync(string scope, string subject, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM identity_quotas WHERE scope = @scope AND subject = @subject", new { scope, subject }, cancellationToken: cancellationToken));
    }
}

internal sealed record QuotaOverride
{
    public string Scope { get; init; } = "";
    public string Subject { get; init; } = "";
    public string Quota { get; init; } = "";
    public long? QuotaLimit { get; init; }
    public long UpdatedAt { get; init; }
    public string UpdatedBy { get; init; } = "";

    public QuotaOverrideResponse ToResponse() =>
        new(Scope, Subject, Quota, QuotaLimit, DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt), UpdatedBy);
}

/// <summary>One override: <c>limit</c> null means unlimited.</summary>
public sealed record QuotaOverrideResponse(string Scope, string Subject, string Quota, long? Limit, DateTimeOffset UpdatedAt, string UpdatedBy);
