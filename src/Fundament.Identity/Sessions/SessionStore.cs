using Dapper;

namespace Fundament.Identity.Sessions;

/// <summary>
/// Sessions are refresh token families (RFC 9700 section 4.14). Each refresh rotates the token;
/// presenting a token that was already rotated means it leaked, so its family, and only that
/// family, is revoked. Tokens are stored as SHA-256 hashes.
/// </summary>
internal sealed class SessionStore(IDatabase database, TimeProvider time, IOptions<IdentityOptions> options)
{
    public async Task<(string SessionId, string RefreshToken)> CreateAsync(string userId, string? sourceIp, string? userAgent, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var sessionId = RandomTokens.NewId();
        var token = RandomTokens.New();
        var sessionExpires = now + options.Value.SessionLifetime;
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO identity_sessions (id, user_id, created_at, last_used_at, expires_at, source_ip, user_agent)
                VALUES (@sessionId, @userId, @now, @now, @expires, @sourceIp, @userAgent)
                """, new
            {
                sessionId, userId, now = now.ToUnixTimeMilliseconds(), expires = sessionExpires.ToUnixTimeMilliseconds(),
                sourceIp, userAgent = userAgent is { Length: > 256 } ? userAgent[..256] : userAgent,
            }, transaction, cancellationToken: cancellationToken));
            await InsertTokenAsync(connection, transaction, sessionId, token, now, sessionExpires, cancellationToken);
            return 0;
        }, cancellationToken);
        return (sessionId, token);
    }

    public async Task<RefreshResult> RefreshAsync(string refreshToken, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        var hash = RandomTokens.Hash(refreshToken);
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<TokenRow>(new CommandDefinition("""
                SELECT t.session_id AS SessionId, t.expires_at AS ExpiresAt, t.used_at AS UsedAt, s.user_id AS UserId,
                       s.revoked_at AS SessionRevokedAt, s.expires_at AS SessionExpiresAt
                FROM identity_refresh_tokens t JOIN identity_sessions s ON s.id = t.session_id
                WHERE t.token_hash = @hash
                """, new { hash }, transaction, cancellationToken: cancellationToken));
            if (row is null || row.SessionRevokedAt is not null)
            {
                return new RefreshResult(RefreshStatus.Invalid, row?.UserId, row?.SessionId, null);
            }
            if (row.UsedAt is not null)
            {
                await RevokeAsync(connection, transaction, row.SessionId, "refresh_token_reuse", nowMs, cancellationToken);
                return new RefreshResult(RefreshStatus.Reused, row.UserId, row.SessionId, null);
            }
            if (row.ExpiresAt <= nowMs || row.SessionExpiresAt <= nowMs)
            {
                return new RefreshResult(RefreshStatus.Invalid, row.UserId, row.SessionId, null);
            }
            // Conditional, so two concurrent uses of one token cannot both succeed.
            var claimed = await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE identity_refresh_tokens SET used_at = @now WHERE token_hash = @hash AND used_at IS NULL",
                new { hash, now = nowMs }, transaction, cancellationToken: cancellationToken));
            if (claimed == 0)
            {
                await RevokeAsync(connection, transaction, row.SessionId, "refresh_token_reuse", nowMs, cancellationToken);
                return new RefreshResult(RefreshStatus.Reused, row.UserId, row.SessionId, null);
            }
            var next = RandomTokens.New();
            await InsertTokenAsync(connection, transaction, row.SessionId, next, now, DateTimeOffset.FromUnixTimeMilliseconds(row.SessionExpiresAt), cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE identity_sessions SET last_used_at = @now WHERE id = @id", new { id = row.SessionId, now = nowMs }, transaction, cancellationToken: cancellationToken));
            return new RefreshResult(RefreshStatus.Ok, row.UserId, row.SessionId, next);
        }, cancellationToken);
    }

    /// <summary>Finds the session a refresh token belongs to (used or not), for logout.</summary>
    public async Task<(string SessionId, string UserId)?> FindByTokenAsync(string refreshToken, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(string SessionId, string UserId)?>(new CommandDefinition("""
            SELECT s.id, s.user_id FROM identity_refresh_tokens t JOIN identity_sessions s ON s.id = t.session_id WHERE t.token_hash = @hash
            """, new { hash = RandomTokens.Hash(refreshToken) }, cancellationToken: cancellationToken));
        return row;
    }

    public async Task<bool> RevokeAsync(string sessionId, string? userId, string reason, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE identity_sessions SET revoked_at = @now, revoked_reason = @reason WHERE id = @sessionId AND revoked_at IS NULL AND (@userId IS NULL OR user_id = @userId)",
            new { sessionId, userId, reason, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task<int> RevokeAllAsync(string userId, string reason, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE identity_sessions SET revoked_at = @now, revoked_reason = @reason WHERE user_id = @userId AND revoked_at IS NULL",
            new { userId, reason, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
    }

    public Task<IReadOnlyList<SessionResponse>> ListActiveAsync(string userId, string? currentSessionId, CancellationToken cancellationToken) =>
        ListActiveAsync(userId, currentSessionId, null, null, cancellationToken);

    /// <summary>
    /// The user's active sessions by id, descending (ids are time-ordered UUIDv7s, so newest first),
    /// those before <paramref name="before"/>; at most <paramref name="take"/>, or all for null.
    /// </summary>
    public async Task<IReadOnlyList<SessionResponse>> ListActiveAsync(string userId, string? currentSessionId, string? before, int? take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<SessionRow>(new CommandDefinition($"""
            SELECT id, created_at AS CreatedAt, last_used_at AS LastUsedAt, expires_at AS ExpiresAt, source_ip AS SourceIp, user_agent AS UserAgent
            FROM identity_sessions WHERE user_id = @userId AND revoked_at IS NULL AND expires_at > @now AND (@before IS NULL OR id < @before)
            ORDER BY id DESC{(take is null ? "" : " LIMIT @take")}
            """, new { userId, now = time.GetUtcNow().ToUnixTimeMilliseconds(), before, take }, cancellationToken: cancellationToken));
        return rows.Select(r => new SessionResponse(
            r.Id, DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(r.LastUsedAt),
            DateTimeOffset.FromUnixTimeMilliseconds(r.ExpiresAt), r.SourceIp, r.UserAgent, r.Id == currentSessionId)).ToList();
    }

    /// <summary>True while the session is neither revoked nor expired.</summary>
    public async Task<bool> IsActiveAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM identity_sessions WHERE id = @sessionId AND revoked_at IS NULL AND expires_at > @now",
            new { sessionId, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken)) == 1;
    }

    private async Task InsertTokenAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, string sessionId, string token, DateTimeOffset now, DateTimeOffset sessionExpires, CancellationToken cancellationToken)
    {
        var expires = now + options.Value.RefreshTokenLifetime;
        if (expires > sessionExpires)
        {
            expires = sessionExpires;
        }
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO identity_refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (@hash, @sessionId, @now, @expires)",
            new { hash = RandomTokens.Hash(token), sessionId, now = now.ToUnixTimeMilliseconds(), expires = expires.ToUnixTimeMilliseconds() },
            transaction, cancellationToken: cancellationToken));
    }

    private static Task RevokeAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, string sessionId, string reason, long now, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            "UPDATE identity_sessions SET revoked_at = @now, revoked_reason = @reason WHERE id = @sessionId AND revoked_at IS NULL",
            new { sessionId, reason, now }, transaction, cancellationToken: cancellationToken));

    private sealed class TokenRow
    {
        public string SessionId { get; init; } = "";
        public long ExpiresAt { get; init; }
        public long? UsedAt { get; init; }
        public string UserId { get; init; } = "";
        public long? SessionRevokedAt { get; init; }
        public long SessionExpiresAt { get; init; }
    }

    private sealed class SessionRow
    {
        public string Id { get; init; } = "";
        public long CreatedAt { get; init; }
        public long LastUsedAt { get; init; }
        public long ExpiresAt { get; init; }
        public string? SourceIp { get; init; }
        public string? UserAgent { get; init; }
    }
}

internal enum RefreshStatus
{
    Ok,
    Invalid,
    Reused,
}

internal sealed record RefreshResult(RefreshStatus Status, string? UserId, string? SessionId, string? RefreshToken);

/// <summary>An active session (one refresh token family) of the current user.</summary>
public sealed record SessionResponse(string Id, DateTimeOffset CreatedAt, DateTimeOffset LastUsedAt, DateTimeOffset ExpiresAt, string? SourceIp, string? UserAgent, bool Current);
