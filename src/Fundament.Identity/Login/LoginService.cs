using Fundament.Identity.Passwords;
using Fundament.Identity.Sessions;
using Fundament.Identity.Tokens;
using Fundament.Identity.Users;

namespace Fundament.Identity.Login;

/// <summary>Password login, refresh rotation and logout, with lockout and audit.</summary>
internal sealed class LoginService(
    IDatabase database,
    UserStore users,
    SessionStore sessions,
    LoginThrottle throttle,
    PasswordHasher hasher,
    TokenIssuer issuer,
    IAuditLog audit,
    IdentityMetrics metrics,
    Authentication.PrincipalStatus status,
    Mfa.MfaStore mfa)
{
    public async Task<LoginResult> LoginAsync(string username, string password, string? sourceIp, string? userAgent, CancellationToken cancellationToken)
    {
        var attempt = new AuditEvent("auth.login", AuditOutcome.Failure) { ActorName = Truncate(username), SourceIp = sourceIp };
        if (await throttle.LockedForAsync(username, cancellationToken) is { } lockedFor)
        {
            metrics.Login("locked");
            await audit.AppendAsync(attempt with { Outcome = AuditOutcome.Denied, Details = new Dictionary<string, string> { ["reason"] = "locked" } }, cancellationToken);
            return LoginResult.Locked(lockedFor);
        }

        var user = await users.FindByUsernameAsync(username, cancellationToken);
        bool passwordOk;
        var needsRehash = false;
        if (user is null)
        {
            hasher.VerifyDummy(password);
            passwordOk = false;
        }
        else
        {
            passwordOk = hasher.Verify(password, user.PasswordHash, out needsRehash);
        }

        if (user is null || !passwordOk || user.Disabled)
        {
            var reason = user is null ? "unknown_user" : !passwordOk ? "bad_password" : "disabled";
            // The failure count and its audit entry commit together.
            await database.InUnitOfWorkAsync(async () =>
            {
                var lockout = await throttle.RecordFailureAsync(username, cancellationToken);
                var details = new Dictionary<string, string> { ["reason"] = reason };
                if (lockout is { } l)
                {
                    metrics.Lockout();
                    details["lockedForSeconds"] = ((int)Math.Ceiling(l.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
                await audit.AppendAsync(attempt with { Actor = user is null ? "anonymous" : $"user:{user.Id}", Details = details }, cancellationToken);
                return 0;
            }, cancellationToken);
            metrics.Login("failure");
            return LoginResult.Failed();
        }

        // Hashing is slow: done before the unit of work, which holds the write lock.
        var rehash = needsRehash ? hasher.Hash(password) : null;

        // A second factor when the user has one, or a role of theirs requires one: the password alone gets a challenge, not a session.
        var factors = await mfa.StatusAsync(user.Id, user.Roles, cancellationToken);
        if (factors.Totp || factors.RequiredBy.Count > 0)
        {
            if (rehash is not null)
            {
                await users.UpgradeHashAsync(user.Id, user.PasswordHash, rehash, cancellationToken);
            }
            var challenge = await mfa.NewChallengeAsync(user.Id, cancellationToken);
            await audit.AppendAsync(new AuditEvent("auth.mfa.challenge", AuditOutcome.Success)
            {
                Actor = $"user:{user.Id}",
                ActorName = user.Username,
                SourceIp = sourceIp,
                Details = new Dictionary<string, string> { ["enrollment"] = factors.Totp ? "no" : "required" },
            }, cancellationToken);
            metrics.Login("mfa_challenge");
            return LoginResult.SecondFactor(challenge, enrollmentRequired: !factors.Totp);
        }
        return LoginResult.Ok(await StartSessionAsync(user, username, rehash, sourceIp, userAgent, null, cancellationToken));
    }

    /// <summary>
    /// The second step of a login: a TOTP code or a recovery code against the challenge the password gave. For a user whose role
    /// requires a factor and who has none yet, the code confirms the secret enrolled with the challenge, and the recovery codes come back once.
    /// Wrong codes count towards the same lockout as wrong passwords; a challenge takes five attempts and lives five minutes.
    /// </summary>
    public async Task<MfaLoginResult> CompleteSecondFactorAsync(string challenge, string? code, string? recoveryCode, string? sourceIp, string? userAgent, CancellationToken cancellationToken)
    {
        if (await mfa.AttemptChallengeAsync(challenge, cancellationToken) is not { } userId
            || await users.GetAsync(userId, cancellationToken) is not { Disabled: false } user)
        {
            return MfaLoginResult.Expired;
        }
        if (await throttle.LockedForAsync(user.Username, cancellationToken) is { } lockedFor)
        {
            await mfa.EndChallengeAsync(challenge, cancellationToken);
            return MfaLoginResult.Locked(lockedFor);
        }
        var factors = await mfa.StatusAsync(user.Id, user.Roles, cancellationToken);
        string[]? recoveryCodes = null;
        bool ok;
        string method;
        if (recoveryCode is not null)
        {
            method = "recovery_code";
            ok = factors.Totp && await mfa.UseRecoveryCodeAsync(user.Id, recoveryCode, cancellationToken);
        }
        else
        {
            method = "totp";
            var check = await mfa.CheckTotpAsync(user.Id, code!, confirming: !factors.Totp, cancellationToken);
            ok = check.Outcome == Mfa.TotpOutcome.Ok;
            recoveryCodes = check.RecoveryCodes;
        }
        var attempt = new AuditEvent("auth.login", AuditOutcome.Failure) { Actor = $"user:{user.Id}", ActorName = user.Username, SourceIp = sourceIp };
        if (!ok)
        {
            await database.InUnitOfWorkAsync(async () =>
            {
                var lockout = await throttle.RecordFailureAsync(user.Username, cancellationToken);
                var details = new Dictionary<string, string> { ["reason"] = "bad_second_factor", ["method"] = method };
                if (lockout is { } l)
                {
                    metrics.Lockout();
                    details["lockedForSeconds"] = ((int)Math.Ceiling(l.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
                await audit.AppendAsync(attempt with { Details = details }, cancellationToken);
                return 0;
            }, cancellationToken);
            metrics.Login("failure");
            return MfaLoginResult.Failed;
        }
        if (!await mfa.ConsumeChallengeAsync(challenge, cancellationToken))
        {
            // Another request redeemed it first: one challenge, one session.
            return MfaLoginResult.Expired;
        }
        var tokens = await StartSessionAsync(user, user.Username, null, sourceIp, userAgent,
            new Dictionary<string, string> { ["mfa"] = method, ["enrolled"] = recoveryCodes is null ? "no" : "yes" }, cancellationToken);
        return new MfaLoginResult(tokens, null, recoveryCodes, false);
    }

    private async Task<TokenResponse> StartSessionAsync(UserRecord user, string username, string? rehash, string? sourceIp, string? userAgent,
        Dictionary<string, string>? details, CancellationToken cancellationToken)
    {
        var attempt = new AuditEvent("auth.login", AuditOutcome.Failure) { ActorName = Truncate(username), SourceIp = sourceIp };
        var (sessionId, refreshToken) = await database.InUnitOfWorkAsync(async () =>
        {
            await throttle.ResetAsync(username, cancellationToken);
            if (rehash is not null)
            {
                await users.UpgradeHashAsync(user.Id, user.PasswordHash, rehash, cancellationToken);
            }
            var session = await sessions.CreateAsync(user.Id, sourceIp, userAgent, cancellationToken);
            await audit.AppendAsync(attempt with
            {
                Actor = $"user:{user.Id}",
                ActorName = user.Username,
                Outcome = AuditOutcome.Success,
                Target = $"session:{session.SessionId}",
                Details = details,
            }, cancellationToken);
            return session;
        }, cancellationToken);
        var (accessToken, expiresIn) = issuer.Issue(Subject(user, sessionId), "password");
        metrics.Login("success");
        return new TokenResponse(accessToken, refreshToken, "Bearer", expiresIn);
    }

    public async Task<TokenResponse?> RefreshAsync(string refreshToken, string? sourceIp, CancellationToken cancellationToken)
    {
        // Rotation, the family revocation a reuse causes, and its audit entry commit together.
        var (result, user) = await database.InUnitOfWorkAsync(async () =>
        {
            var result = await sessions.RefreshAsync(refreshToken, cancellationToken);
            if (result.Status == RefreshStatus.Reused)
            {
                await audit.AppendAsync(new AuditEvent("auth.refresh_token_reuse", AuditOutcome.Denied)
                {
                    Actor = $"user:{result.UserId}",
                    Target = $"session:{result.SessionId}",
                    SourceIp = sourceIp,
                    Details = new Dictionary<string, string> { ["action"] = "session_revoked" },
                }, cancellationToken);
                // Only the subject whose session ended: an anonymous caller cannot empty everyone's cached status.
                status.Invalidate("user", result.UserId!);
                return (result, (UserRecord?)null);
            }
            if (result.Status != RefreshStatus.Ok)
            {
                return (result, null);
            }
            var user = await users.GetAsync(result.UserId!, cancellationToken);
            if (user is null || user.Disabled)
            {
                await sessions.RevokeAsync(result.SessionId!, null, "user_disabled", cancellationToken);
                status.Invalidate("user", result.UserId!);
                return (result, null);
            }
            return (result, user);
        }, cancellationToken);
        if (result.Status == RefreshStatus.Reused)
        {
            metrics.RefreshReuse();
        }
        if (user is null)
        {
            return null;
        }
        var (accessToken, expiresIn) = issuer.Issue(Subject(user, result.SessionId), "refresh_token");
        return new TokenResponse(accessToken, result.RefreshToken, "Bearer", expiresIn);
    }

    /// <summary>Ends the session the refresh token belongs to. Unknown tokens are ignored (logout is idempotent).</summary>
    public async Task LogoutAsync(string refreshToken, string? sourceIp, CancellationToken cancellationToken)
    {
        if (await sessions.FindByTokenAsync(refreshToken, cancellationToken) is not { } session)
        {
            return;
        }
        await database.InUnitOfWorkAsync(async () =>
        {
            if (await sessions.RevokeAsync(session.SessionId, null, "logout", cancellationToken))
            {
                status.Invalidate("user", session.UserId);
                await audit.AppendAsync(new AuditEvent("auth.logout", AuditOutcome.Success)
                {
                    Actor = $"user:{session.UserId}",
                    Target = $"session:{session.SessionId}",
                    SourceIp = sourceIp,
                }, cancellationToken);
            }
            return 0;
        }, cancellationToken);
    }

    public static TokenSubject Subject(UserRecord user, string? sessionId) =>
        new(user.Id, "user", user.Username, user.Roles, TokenIssuer.FirstPartyClientId, sessionId);

    private static string Truncate(string value) => value.Length > 64 ? value[..64] : value;
}

internal sealed record LoginResult(TokenResponse? Tokens, TimeSpan? LockedFor)
{
    /// <summary>The password was right and a second factor is due: the challenge token for <c>POST /api/v1/auth/login/mfa</c>.</summary>
    public string? Challenge { get; init; }

    /// <summary>The user has no factor yet and a role requires one: enroll with the challenge first.</summary>
    public bool EnrollmentRequired { get; init; }

    public static LoginResult Ok(TokenResponse tokens) => new(tokens, null);

    public static LoginResult Failed() => new(null, null);

    public static LoginResult Locked(TimeSpan lockedFor) => new(null, lockedFor);

    public static LoginResult SecondFactor(string challenge, bool enrollmentRequired) => new(null, null) { Challenge = challenge, EnrollmentRequired = enrollmentRequired };
}

internal sealed record MfaLoginResult(TokenResponse? Tokens, TimeSpan? LockedFor, string[]? RecoveryCodes, bool ChallengeExpired)
{
    public static readonly MfaLoginResult Failed = new(null, null, null, false);
    public static readonly MfaLoginResult Expired = new(null, null, null, true);

    public static MfaLoginResult Locked(TimeSpan lockedFor) => new(null, lockedFor, null, false);
}
