using System.Collections.Concurrent;
using Dapper;
using Fundament.Storage;

namespace Fundament.Identity.Authentication;

/// <summary>
/// Whether the subject of a still-valid access token may still act: the user exists and is
/// enabled, the session (refresh family) is not revoked, the client is not disabled. Answers are
/// cached for a few seconds, so disabling a user or ending a session takes effect within that
/// time instead of at token expiry, without a query per request.
/// </summary>
internal sealed class PrincipalStatus(IDatabase database, TimeProvider time)
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, (bool Active, DateTimeOffset At)> _cache = new(StringComparer.Ordinal);

    public async ValueTask<bool> IsActiveAsync(string subjectType, string subject, string? sessionId, CancellationToken cancellationToken)
    {
        var key = $"{subjectType}:{subject}:{sessionId}";
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(key, out var cached) && now - cached.At < CacheFor)
        {
            return cached.Active;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        bool active;
        if (subjectType == "client")
        {
            active = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM identity_clients WHERE id = @subject AND disabled = FALSE", new { subject }, cancellationToken: cancellationToken)) == 1;
        }
        else
        {
            active = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM identity_users WHERE id = @subject AND disabled = FALSE", new { subject }, cancellationToken: cancellationToken)) == 1;
            if (active && sessionId is not null)
            {
                active = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                    "SELECT COUNT(*) FROM identity_sessions WHERE id = @sessionId AND user_id = @subject AND revoked_at IS NULL",
                    new { sessionId, subject }, cancellationToken: cancellationToken)) == 1;
            }
        }
        if (_cache.Count > 100_000)
        {
            _cache.Clear();
        }
        _cache[key] = (active, now);
        return active;
    }

    /// <summary>Forgets cached answers after a local change (other replicas catch up within the cache time).</summary>
    public void Invalidate() => _cache.Clear();
}
