using Dapper;
using Fundament.Identity.Users;

namespace Fundament.Identity.Login;

/// <summary>
/// Brute-force protection, kept per normalized username whether or not such a user exists, so
/// the answers never reveal which usernames are real. After <see cref="LockoutOptions.MaxFailedAttempts"/>
/// failures the name is locked; each further lockout doubles the time up to the maximum.
/// </summary>
internal sealed class LoginThrottle(IDatabase database, TimeProvider time, IOptions<IdentityOptions> options)
{
    /// <summary>How long the name stays locked, or null when a login may be tried.</summary>
    public async Task<TimeSpan?> LockedForAsync(string username, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var lockedUntil = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT locked_until FROM identity_login_throttle WHERE username_normalized = @name",
            new { name = UserStore.Normalize(username) }, cancellationToken: cancellationToken));
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return lockedUntil is { } until && until > now ? TimeSpan.FromMilliseconds(until - now) : null;
    }

    /// <summary>Counts a failure; returns the lockout it caused, if any.</summary>
    public async Task<TimeSpan?> RecordFailureAsync(string username, CancellationToken cancellationToken)
    {
        var o = options.Value.Lockout;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var name = UserStore.Normalize(username);
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<(long Failures, long Lockouts, long LastFailureAt)?>(database.Command("SELECT failures, lockouts, last_failure_at FROM identity_login_throttle WHERE username_normalized = @name{for_update}",
                new { name }, transaction, cancellationToken: cancellationToken));
            var failures = row?.Failures ?? 0;
            var lockouts = row?.Lockouts ?? 0;
            var sinceLast = now - (row?.LastFailureAt ?? now);
            if (sinceLast > o.FailureWindow.TotalMilliseconds)
            {
                failures = 0;
            }
            if (sinceLast > TimeSpan.FromDays(1).TotalMilliseconds)
            {
                lockouts = 0;
            }
            failures++;
            long? lockedUntil = null;
            TimeSpan? lockout = null;
            if (failures >= o.MaxFailedAttempts)
            {
                var factor = Math.Pow(2, Math.Min(lockouts, 30));
                lockout = TimeSpan.FromMilliseconds(Math.Min(o.Duration.TotalMilliseconds * factor, o.MaxDuration.TotalMilliseconds));
                lockedUntil = now + (long)lockout.Value.TotalMilliseconds;
                lockouts++;
                failures = 0;
            }
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO identity_login_throttle (username_normalized, failures, lockouts, locked_until, last_failure_at)
                VALUES (@name, @failures, @lockouts, @lockedUntil, @now)
                ON CONFLICT (username_normalized) DO UPDATE SET failures = excluded.failures, lockouts = excluded.lockouts,
                    locked_until = COALESCE(excluded.locked_until, identity_login_throttle.locked_until), last_failure_at = excluded.last_failure_at
                """, new { name, failures, lockouts, lockedUntil, now }, transaction, cancellationToken: cancellationToken));
            return lockout;
        }, cancellationToken);
    }

    public async Task ResetAsync(string username, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM identity_login_throttle WHERE username_normalized = @name", new { name = UserStore.Normalize(username) }, cancellationToken: cancellationToken));
    }
}
