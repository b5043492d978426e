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
    Authentication.PrincipalStatus status)
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
            }, cancellationToken);
            return session;
        }, cancellationToken);
        var (accessToken, expiresIn) = issuer.Issue(Subject(user, sessionId), "password");
        metrics.Login("success");
        return LoginResult.Ok(new TokenResponse(accessToken, refreshToken, "Bearer", expiresIn));
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
    public static LoginResult Ok(TokenResponse tokens) => new(tokens, null);

    public static LoginResult Failed() => new(null, null);

    public static LoginResult Locked(TimeSpan lockedFor) => new(null, lockedFor);
}
