using System.Text.Json;
using Dapper;
using Fundament.Core.Caching;
using ZiggyCreatures.Caching.Fusion;

namespace Fundament.Identity.Authentication;

/// <summary>
/// What the subject of a still-valid access token may do now: whether the user exists and is
/// enabled, the session (refresh family) is not revoked, the client is not disabled, and which
/// roles it holds today. Answers go through the platform cache (FusionCache: memory, plus Redis as
/// the second level and backplane when configured) for <see cref="CacheFor"/>. A change on any node
/// evicts them on every node at once through the backplane; without one (the embedded default, a
/// single node) the change evicts them locally and other replicas catch up within <see cref="CacheFor"/>.
/// </summary>
internal sealed class PrincipalStatus(IDatabase database, TimeProvider time, IFusionCache cache, IOptions<CacheOptions> cacheOptions)
{
    /// <summary>The longest a change to a principal takes to reach a replica's authorization when the backplane is down or absent.</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);

    private const string Tag = "principal-status";

    private static readonly FusionCacheEntryOptions Entry = new()
    {
        Duration = CacheFor,
        IsFailSafeEnabled = true,
        FailSafeThrottleDuration = TimeSpan.FromSeconds(1),
    };

    public async ValueTask<SubjectState> StateAsync(string subjectType, string subject, string? sessionId, CancellationToken cancellationToken)
    {
        var key = $"principal:{subjectType}:{subject}:{sessionId}";
        var entry = await cache.GetOrSetAsync<StatusEntry>(key,
            async (_, ct) => new StatusEntry(await LoadAsync(subjectType, subject, sessionId, ct), time.GetUtcNow().ToUnixTimeMilliseconds()),
            options: Entry.Duplicate().SetFailSafe(true, cacheOptions.Value.FailSafeMaxDuration), tags: [Tag], token: cancellationToken);
        // Also aged on the platform's clock (TimeProvider), which the cache's own expiry does not follow.
        var age = time.GetUtcNow().ToUnixTimeMilliseconds() - entry.At;
        if (age >= CacheFor.TotalMilliseconds)
        {
            try
            {
                entry = new StatusEntry(await LoadAsync(subjectType, subject, sessionId, cancellationToken), time.GetUtcNow().ToUnixTimeMilliseconds());
                await cache.SetAsync(key, entry, Entry, tags: [Tag], token: cancellationToken);
            }
            catch (Exception) when (age < cacheOptions.Value.FailSafeMaxDuration.TotalMilliseconds && !cancellationToken.IsCancellationRequested)
            {
                // The database failed: the last answer stands, as the cache's fail-safe would have it.
            }
        }
        return entry.State;
    }

    private async Task<SubjectState> LoadAsync(string subjectType, string subject, string? sessionId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        if (subjectType == "client")
        {
            var row = await connection.QuerySingleOrDefaultAsync<(string Roles, bool Disabled, long SecretRotatedAt)?>(new CommandDefinition(
                "SELECT roles, disabled, secret_rotated_at FROM identity_clients WHERE id = @subject", new { subject }, cancellationToken: cancellationToken));
            return row is { Disabled: false } client
                ? new SubjectState(true, JsonSerializer.Deserialize<string[]>(client.Roles) ?? []) { IssuedNotBefore = client.SecretRotatedAt / 1000 }
                : SubjectState.Inactive;
        }
        var active = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM identity_users WHERE id = @subject AND disabled = FALSE", new { subject }, cancellationToken: cancellationToken)) == 1;
        if (active && sessionId is not null)
        {
            active = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM identity_sessions WHERE id = @sessionId AND user_id = @subject AND revoked_at IS NULL",
                new { sessionId, subject }, cancellationToken: cancellationToken)) == 1;
        }
        return active
            ? new SubjectState(true, [.. await connection.QueryAsync<string>(new CommandDefinition(
                "SELECT role FROM identity_user_roles WHERE user_id = @subject", new { subject }, cancellationToken: cancellationToken))])
            : SubjectState.Inactive;
    }

    /// <summary>Forgets cached answers after a change, once it has committed: on this node at once, and on every other through the backplane.</summary>
    public void Invalidate() => UnitOfWork.AfterCommit(() => cache.RemoveByTag(Tag));

    /// <summary>A cached answer and when it was loaded (Unix ms on the platform's clock).</summary>
    internal sealed record StatusEntry(SubjectState State, long At);
}

/// <summary>A subject as it stands now: may it act, and with which roles.</summary>
internal sealed record SubjectState(bool Active, IReadOnlyList<string> Roles)
{
    public static readonly SubjectState Inactive = new(false, []);

    /// <summary>
    /// Tokens issued (<c>iat</c>, Unix seconds) before this are void: a client's secret rotation
    /// ends the tokens minted with the old secret. Whole seconds, as <c>iat</c> is, so a token
    /// minted in the second of the rotation survives.
    /// </summary>
    public long IssuedNotBefore { get; init; }
}
