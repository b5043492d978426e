using Dapper;

namespace Fundament.Identity.Login;

/// <summary>Single-use, expiring password reset tokens, stored as SHA-256.</summary>
internal sealed class PasswordResetStore(IDatabase database, TimeProvider time, IOptions<IdentityOptions> options)
{
    /// <summary>Issues a token, unless one was issued for this user in the last minute (mail-bombing guard).</summary>
    public async Task<string?> IssueAsync(string userId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var token = RandomTokens.New();
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            var recent = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM identity_password_resets WHERE user_id = @userId AND created_at > @since",
                new { userId, since = (now - TimeSpan.FromMinutes(1)).ToUnixTimeMilliseconds() }, transaction, cancellationToken: cancellationToken));
            if (recent > 0)
            {
                return null;
            }
            await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM identity_password_resets WHERE user_id = @userId AND (used_at IS NOT NULL OR expires_at < @now)",
                new { userId, now = now.ToUnixTimeMilliseconds() }, transaction, cancellationToken: cancellationToken));
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO identity_password_resets (token_hash, user_id, created_at, expires_at) VALUES (@hash, @userId, @now, @expires)",
                new { hash = RandomTokens.Hash(token), userId, now = now.ToUnixTimeMilliseconds(), expires = (now + options.Value.PasswordResetTokenLifetime).ToUnixTimeMilliseconds() },
                transaction, cancellationToken: cancellationToken));
            return token;
        }, cancellationToken);
    }

    /// <summary>Uses up the token; returns its user, or null when it is unknown, used or expired.</summary>
    public async Task<string?> ConsumeAsync(string token, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var hash = RandomTokens.Hash(token);
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            var userId = await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
                "SELECT user_id FROM identity_password_resets WHERE token_hash = @hash AND used_at IS NULL AND expires_at > @now",
                new { hash, now }, transaction, cancellationToken: cancellationToken));
            if (userId is null)
            {
                return null;
            }
            var claimed = await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE identity_password_resets SET used_at = @now WHERE token_hash = @hash AND used_at IS NULL",
                new { hash, now }, transaction, cancellationToken: cancellationToken));
            return claimed == 1 ? userId : null;
        }, cancellationToken);
    }

    /// <summary>The user a usable token belongs to, without using it up.</summary>
    public async Task<string?> UserOfAsync(string token, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT user_id FROM identity_password_resets WHERE token_hash = @hash AND used_at IS NULL AND expires_at > @now",
            new { hash = RandomTokens.Hash(token), now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
    }
}
