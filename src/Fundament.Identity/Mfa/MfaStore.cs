using System.Security.Cryptography;
using System.Text;
using Dapper;
using Fundament.Core.Keys;
using OtpNet;

namespace Fundament.Identity.Mfa;

/// <summary>
/// Second factors: a TOTP secret per user (RFC 6238, 30 s steps, 6 digits, SHA-1 as every
/// authenticator app expects; envelope-encrypted at rest, each step accepted once), ten single-use
/// recovery codes (stored as SHA-256: they are 80 random bits each), the short-lived challenges a
/// password login hands out when a second factor is due, and the roles that require one.
/// </summary>
internal sealed class MfaStore(IDatabase database, EnvelopeEncryption encryption, TimeProvider time) : IEnvelopeHolder
{
    public const int RecoveryCodeCount = 10;
    public const int MaxChallengeAttempts = 5;
    public static readonly TimeSpan ChallengeLifetime = TimeSpan.FromMinutes(5);

    public string Name => "identity TOTP secrets";

    private static byte[] Aad(string userId) => Encoding.UTF8.GetBytes($"fundament:identity:totp:{userId}");

    /// <summary>A new (unconfirmed) secret for <paramref name="userId"/>, replacing an unconfirmed one. Null when one is confirmed already.</summary>
    public async Task<byte[]?> BeginTotpAsync(string userId, CancellationToken cancellationToken)
    {
        var secret = KeyGeneration.GenerateRandomKey(20);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            // Only a pending enrolment is replaced; a confirmed factor (even one confirmed a moment ago) stays, and the insert then does nothing.
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_mfa_totp WHERE user_id = @userId AND confirmed_at IS NULL",
                new { userId }, transaction, cancellationToken: cancellationToken));
            var inserted = await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO identity_mfa_totp (user_id, secret, confirmed_at, last_step, created_at) VALUES (@userId, @secret, NULL, 0, @now)
                ON CONFLICT (user_id) DO NOTHING
                """, new { userId, secret = encryption.Encrypt(secret, Aad(userId)), now }, transaction, cancellationToken: cancellationToken));
            return inserted == 1 ? secret : null;
        }, cancellationToken);
    }

    /// <summary>Whether the user has a confirmed TOTP factor.</summary>
    public async Task<MfaStatus> StatusAsync(string userId, IReadOnlyList<string> roles, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var confirmed = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT confirmed_at FROM identity_mfa_totp WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
        var codes = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM identity_mfa_recovery_codes WHERE user_id = @userId AND used_at IS NULL", new { userId }, cancellationToken: cancellationToken));
        var required = await RequiredByAsync(roles, cancellationToken);
        return new MfaStatus(confirmed is not null, confirmed is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : null, (int)codes, required);
    }

    /// <summary>The user's roles that require a second factor.</summary>
    public async Task<IReadOnlyList<string>> RequiredByAsync(IReadOnlyList<string> roles, CancellationToken cancellationToken)
    {
        if (roles.Count == 0)
        {
            return [];
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var required = await connection.QueryAsync<string>(new CommandDefinition("SELECT role FROM identity_role_mfa", cancellationToken: cancellationToken));
        return required.Where(roles.Contains).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Checks a TOTP code against the user's secret (confirmed, or pending when <paramref name="confirming"/>), one step either side for
    /// clock drift, and consumes the step so the same code never works twice. Confirming also issues the recovery codes, returned once.
    /// </summary>
    public async Task<TotpCheck> CheckTotpAsync(string userId, string code, bool confirming, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(byte[] Secret, long? ConfirmedAt, long LastStep, long CreatedAt)>(new CommandDefinition(
            "SELECT secret, confirmed_at, last_step, created_at FROM identity_mfa_totp WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
        if (row.Secret is null || (row.ConfirmedAt is null) != confirming)
        {
            return TotpCheck.NoFactor;
        }
        var secret = encryption.Decrypt(row.Secret, Aad(userId));
        var totp = new Totp(secret);
        var ok = totp.VerifyTotp(time.GetUtcNow().UtcDateTime, code.Trim(), out var step, VerificationWindow.RfcSpecifiedNetworkDelay);
        CryptographicOperations.ZeroMemory(secret);
        if (!ok)
        {
            return TotpCheck.Wrong;
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        string[]? recovery = confirming ? NewRecoveryCodes() : null;
        var accepted = await database.InTransactionAsync(async (c, t) =>
        {
            // A step is accepted once: the conditional update is the replay guard, across replicas too.
            // The same enrolment the code was checked against (created_at), in the same state: a new pending secret swapped in meanwhile is not confirmed by it.
            var changed = await c.ExecuteAsync(new CommandDefinition(
                $"UPDATE identity_mfa_totp SET last_step = @step, confirmed_at = COALESCE(confirmed_at, @now) WHERE user_id = @userId AND last_step < @step AND created_at = @createdAt AND confirmed_at IS {(confirming ? "NULL" : "NOT NULL")}",
                new { userId, step, now, createdAt = row.CreatedAt }, t, cancellationToken: cancellationToken));
            if (changed == 0)
            {
                return false;
            }
            if (recovery is not null)
            {
                await ReplaceRecoveryCodesAsync(c, t, userId, recovery, cancellationToken);
            }
            return true;
        }, cancellationToken);
        return accepted ? new TotpCheck(TotpOutcome.Ok, recovery) : TotpCheck.Replayed;
    }

    /// <summary>Uses one recovery code; false when it is wrong or used.</summary>
    public async Task<bool> UseRecoveryCodeAsync(string userId, string code, CancellationToken cancellationToken)
    {
        var hash = RecoveryHash(code);
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE identity_mfa_recovery_codes SET used_at = @now WHERE user_id = @userId AND code_hash = @hash AND used_at IS NULL",
            new { userId, hash, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>New recovery codes (the old ones stop working), for a user with a confirmed factor.</summary>
    public async Task<string[]?> RegenerateRecoveryCodesAsync(string userId, CancellationToken cancellationToken)
    {
        var codes = NewRecoveryCodes();
        return await database.InTransactionAsync(async (c, t) =>
        {
            var confirmed = await c.ExecuteScalarAsync<long?>(new CommandDefinition(
                "SELECT confirmed_at FROM identity_mfa_totp WHERE user_id = @userId", new { userId }, t, cancellationToken: cancellationToken));
            if (confirmed is null)
            {
                return null;
            }
            await ReplaceRecoveryCodesAsync(c, t, userId, codes, cancellationToken);
            return codes;
        }, cancellationToken);
    }

    /// <summary>Removes every factor of the user (their own choice with a code, or an administrator's reset). True when there was one.</summary>
    public async Task<bool> ResetAsync(string userId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var removed = await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_mfa_totp WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_mfa_recovery_codes WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_mfa_challenges WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
        return removed > 0;
    }

    /// <summary>A challenge for a user whose password was right; the token is returned once and stored hashed.</summary>
    public async Task<string> NewChallengeAsync(string userId, CancellationToken cancellationToken)
    {
        var token = RandomTokens.New();
        var now = time.GetUtcNow();
        await using var connection = await database.OpenAsync(cancellationToken);
        // One live challenge per user: a new password login ends the previous one (no stockpiling challenges for parallel guessing).
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM identity_mfa_challenges WHERE expires_at < @now OR user_id = @userId", new { now = now.ToUnixTimeMilliseconds(), userId }, cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO identity_mfa_challenges (token_hash, user_id, created_at, expires_at, attempts) VALUES (@hash, @userId, @now, @expires, 0)
            """, new { hash = RandomTokens.Hash(token), userId, now = now.ToUnixTimeMilliseconds(), expires = (now + ChallengeLifetime).ToUnixTimeMilliseconds() },
            cancellationToken: cancellationToken));
        return token;
    }

    /// <summary>
    /// Counts an attempt on the challenge and returns its user; null when it is unknown, expired or out of attempts
    /// (then it is gone: the user starts again with the password).
    /// </summary>
    public async Task<string?> AttemptChallengeAsync(string token, CancellationToken cancellationToken)
    {
        var hash = RandomTokens.Hash(token);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        // One statement claims the attempt: parallel requests cannot both take the fifth.
        var userId = await connection.ExecuteScalarAsync<string?>(new CommandDefinition("""
            UPDATE identity_mfa_challenges SET attempts = attempts + 1
            WHERE token_hash = @hash AND attempts < @max AND expires_at >= @now
            RETURNING user_id
            """, new { hash, now, max = MaxChallengeAttempts }, cancellationToken: cancellationToken));
        if (userId is null)
        {
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_mfa_challenges WHERE token_hash = @hash", new { hash }, cancellationToken: cancellationToken));
        }
        return userId;
    }

    /// <summary>Consumes the challenge; false when another request consumed it first (one challenge, one session).</summary>
    public async Task<bool> ConsumeChallengeAsync(string token, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_mfa_challenges WHERE token_hash = @hash",
            new { hash = RandomTokens.Hash(token) }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task EndChallengeAsync(string token, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_mfa_challenges WHERE token_hash = @hash", new { hash = RandomTokens.Hash(token) }, cancellationToken: cancellationToken));
    }

    /// <summary>Sets whether <paramref name="role"/> requires a second factor; false when the role does not exist.</summary>
    public async Task<bool> SetRoleRequirementAsync(string role, bool required, string? by, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        if (await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM identity_roles WHERE name = @role", new { role }, cancellationToken: cancellationToken)) == 0)
        {
            return false;
        }
        if (required)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO identity_role_mfa (role, required_at, required_by) VALUES (@role, @now, @by) ON CONFLICT (role) DO NOTHING",
                new { role, now = time.GetUtcNow().ToUnixTimeMilliseconds(), by }, cancellationToken: cancellationToken));
        }
        else
        {
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_role_mfa WHERE role = @role", new { role }, cancellationToken: cancellationToken));
        }
        return true;
    }

    /// <summary>Holders of <paramref name="role"/> without a confirmed factor (their sessions end when the role starts requiring one).</summary>
    public async Task<IReadOnlyList<string>> HoldersWithoutFactorAsync(string role, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<string>(new CommandDefinition("""
            SELECT ur.user_id FROM identity_user_roles ur
            WHERE ur.role = @role AND NOT EXISTS (SELECT 1 FROM identity_mfa_totp t WHERE t.user_id = ur.user_id AND t.confirmed_at IS NOT NULL)
            """, new { role }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task<IReadOnlyList<string>> RolesRequiringAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<string>(new CommandDefinition("SELECT role FROM identity_role_mfa ORDER BY role", cancellationToken: cancellationToken))).ToList();
    }

    public Task<RewrapResult> RewrapAsync(EnvelopeEncryption current, CancellationToken cancellationToken) =>
        EnvelopeColumn.RewrapAsync(database, current, "identity_mfa_totp", ["user_id"], "secret", null, cancellationToken);

    public Task<IReadOnlyList<string>> SampleKeyIdsAsync(CancellationToken cancellationToken) =>
        EnvelopeColumn.KeyIdsAsync(database, "identity_mfa_totp", "secret", 100, cancellationToken);

    /// <summary>The <c>otpauth://</c> address authenticator apps read from a QR code.</summary>
    public static string OtpAuthUri(string issuer, string username, byte[] secret) =>
        $"otpauth://totp/{Uri.EscapeDataString(issuer)}:{Uri.EscapeDataString(username)}?secret={Base32Encoding.ToString(secret)}&issuer={Uri.EscapeDataString(issuer)}&algorithm=SHA1&digits=6&period=30";

    private static string[] NewRecoveryCodes() =>
        Enumerable.Range(0, RecoveryCodeCount).Select(_ =>
        {
            // 16 characters of base32 (80 bits: a dump of the hashes cannot be searched through), shown as xxxx-xxxx-xxxx-xxxx.
            var text = Base32Encoding.ToString(RandomNumberGenerator.GetBytes(10))[..16].ToLowerInvariant();
            return $"{text[..4]}-{text[4..8]}-{text[8..12]}-{text[12..]}";
        }).ToArray();

    private static string RecoveryHash(string code) =>
        RandomTokens.Hash(code.Trim().Replace("-", "", StringComparison.Ordinal).ToLowerInvariant());

    private static async Task ReplaceRecoveryCodesAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction t, string userId, string[] codes, CancellationToken cancellationToken)
    {
        await c.ExecuteAsync(new CommandDefinition("DELETE FROM identity_mfa_recovery_codes WHERE user_id = @userId", new { userId }, t, cancellationToken: cancellationToken));
        foreach (var code in codes)
        {
            await c.ExecuteAsync(new CommandDefinition("INSERT INTO identity_mfa_recovery_codes (user_id, code_hash, used_at) VALUES (@userId, @hash, NULL)",
                new { userId, hash = RecoveryHash(code) }, t, cancellationToken: cancellationToken));
        }
    }
}

internal enum TotpOutcome
{
    Ok,
    Wrong,
    Replayed,
    NoFactor,
}

internal sealed record TotpCheck(TotpOutcome Outcome, string[]? RecoveryCodes)
{
    public static readonly TotpCheck Wrong = new(TotpOutcome.Wrong, null);
    public static readonly TotpCheck Replayed = new(TotpOutcome.Replayed, null);
    public static readonly TotpCheck NoFactor = new(TotpOutcome.NoFactor, null);
}

/// <summary>A user's second factors: TOTP confirmed (and when), unused recovery codes, and the roles that require a factor.</summary>
public sealed record MfaStatus(bool Totp, DateTimeOffset? TotpConfirmedAt, int RecoveryCodesLeft, IReadOnlyList<string> RequiredBy);
