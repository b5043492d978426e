using System.Text.Json;
using Dapper;
using ZiggyCreatures.Caching.Fusion;

namespace Fundament.Identity.Authentication;

/// <summary>
/// What the subject of a still-valid access token may do now: whether the user exists and is
/// enabled, the session (refresh family) is not revoked, the client is not disabled, and which
/// roles it holds today. Answers go through the platform cache (FusionCache: memory, plus Redis as
/// the second level and backplane when configured) for <see cref="CacheFor"/>. A change on any node
/// evicts them on every node at once through the backplane; without one (the embedded default, a
/// single node) the change evicts them locally and other replicas catch up within <see cref="CacheFor"/>.
/// Never served stale when the database fails (no fail-safe): authorization then fails closed.
/// </summary>
internal sealed class PrincipalStatus(IDatabase database, TimeProvider time, IFusionCache cache)
{
    /// <summary>The longest a change to a principal takes to reach a replica's authorization when the backplane is down or absent.</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);

    private const string Tag = "principal-status";

    /// <summary>
    /// The platform's defaults (Redis timeouts included) for <see cref="CacheFor"/>, and never fail-safe:
    /// when the database cannot say whether a subject is still active, the request fails rather than
    /// trusting an answer that may have been evicted because the subject was disabled.
    /// </summary>
    private FusionCacheEntryOptions Entry => _entry ??= cache.DefaultEntryOptions.Duplicate()
        .SetDuration(CacheFor).SetFailSafe(false).SetSkipDistributedCacheRead(false);

    private FusionCacheEntryOptions? _entry;

    public async ValueTask<SubjectState> StateAsync(string subjectType, string subject, string? sessionId, CancellationToken cancellationToken)
    {
        var key = $"principal:{subjectType}:{subject}:{sessionId}";
        string[] tags = [Tag, SubjectTag(subjectType, subject)];
        var entry = await cache.GetOrSetAsync<StatusEntry>(key,
            async (_, ct) => new StatusEntry(await LoadAsync(subjectType, subject, sessionId, ct), time.GetUtcNow().ToUnixTimeMilliseconds()),
            options: Entry, tags: tags, token: cancellationToken);
        // Also aged on the platform's clock (TimeProvider), which the cache's own expiry does not follow.
        if (time.GetUtcNow().ToUnixTimeMilliseconds() - entry.At >= CacheFor.TotalMilliseconds)
        {
            entry = new StatusEntry(await LoadAsync(subjectType, subject, sessionId, cancellationToken), time.GetUtcNow().ToUnixTimeMilliseconds());
            await cache.SetAsync(key, entry, Entry, tags: tags, token: cancellationToken);
        }
        return entry.State;
    }

    private static string SubjectTag(string subjectType, string subject) => $"principal:{subjectType}:{subject}";

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

    /// <summary>Forgets every cached answer after a change, once it has committed: on this node at once, and on every other through the backplane.</summary>
    public void Invalidate() => UnitOfWork.AfterCommit(() => Forget(Tag));

    /// <summary>Forgets one subject's cached answers (every session of it) once the change has committed.</summary>
    public void Invalidate(string subjectType, string subject) => UnitOfWork.AfterCommit(() => Forget(SubjectTag(subjectType, subject)));

    private void Forget(string tag)
    {
        // Evicted from this node's memory before this returns; Redis and the backplane follow without holding up the request.
        _ = cache.RemoveByTagAsync(tag, new FusionCacheEntryOptions { AllowBackgroundDistributedCacheOperations = true, AllowBackgroundBackplaneOperations = true }).AsTask();
    }

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
