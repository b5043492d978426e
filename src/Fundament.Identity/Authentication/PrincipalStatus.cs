using System.Collections.Concurrent;
using System.Text.Json;
using Dapper;

namespace Fundament.Identity.Authentication;

/// <summary>
/// What the subject of a still-valid access token may do now: whether the user exists and is
/// enabled, the session (refresh family) is not revoked, the client is not disabled, and which
/// roles it holds today. Answers are cached for <see cref="CacheFor"/>, so disabling a user,
/// ending a session or taking a role away takes effect on every replica within that time instead
/// of at token expiry, without a query per request.
/// </summary>
internal sealed class PrincipalStatus(IDatabase database, TimeProvider time)
{
    /// <summary>The longest a change to a principal takes to reach every replica's authorization.</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, (SubjectState State, DateTimeOffset At)> _cache = new(StringComparer.Ordinal);

    public async ValueTask<SubjectState> StateAsync(string subjectType, string subject, string? sessionId, CancellationToken cancellationToken)
    {
        var key = $"{subjectType}:{subject}:{sessionId}";
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(key, out var cached) && now - cached.At < CacheFor)
        {
            return cached.State;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        SubjectState state;
        if (subjectType == "client")
        {
            var row = await connection.QuerySingleOrDefaultAsync<(string Roles, bool Disabled, long SecretRotatedAt)?>(new CommandDefinition(
                "SELECT roles, disabled, secret_rotated_at FROM identity_clients WHERE id = @subject", new { subject }, cancellationToken: cancellationToken));
            state = row is { Disabled: false } client
                ? new SubjectState(true, JsonSerializer.Deserialize<string[]>(client.Roles) ?? []) { IssuedNotBefore = client.SecretRotatedAt / 1000 }
                : SubjectState.Inactive;
        }
        else
        {
            var active = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM identity_users WHERE id = @subject AND disabled = FALSE", new { subject }, cancellationToken: cancellationToken)) == 1;
            if (active && sessionId is not null)
            {
                active = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                    "SELECT COUNT(*) FROM identity_sessions WHERE id = @sessionId AND user_id = @subject AND revoked_at IS NULL",
                    new { sessionId, subject }, cancellationToken: cancellationToken)) == 1;
            }
            state = active
                ? new SubjectState(true, [.. await connection.QueryAsync<string>(new CommandDefinition(
                    "SELECT role FROM identity_user_roles WHERE user_id = @subject", new { subject }, cancellationToken: cancellationToken))])
                : SubjectState.Inactive;
        }
        if (_cache.Count > 100_000)
        {
            _cache.Clear();
        }
        _cache[key] = (state, now);
        return state;
    }

    /// <summary>Forgets cached answers after a local change, once it has committed (other replicas catch up within <see cref="CacheFor"/>).</summary>
    public void Invalidate() => UnitOfWork.AfterCommit(_cache.Clear);
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
