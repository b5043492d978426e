using Fundament.Identity.ApiKeys;
using Fundament.Identity.Authentication;
using Fundament.Identity.Clients;
using Fundament.Identity.Login;
using Fundament.Identity.Passwords;
using Fundament.Identity.Roles;
using Fundament.Identity.Users;

namespace Fundament.Identity.Sessions;

internal static class MeApi
{
    public static RouteGroupBuilder MapMeApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/me").WithTags("Me").RequireAuthorization(Policies.Authenticated);
        group.MapGet("", GetAsync).WithName("GetMe").WithSummary("The caller: user or service client, roles and effective permissions.");
        group.MapGet("/sessions", SessionsAsync).WithName("ListMySessions")
            .WithSummary("The caller's active sessions by id, newest first (ids are time-ordered), a page at a time: limit (1-500, default 100) and after "
                + "(the cursor in the Link rel=next header).");
        group.MapDelete("/sessions/{id}", EndSessionAsync).WithName("EndMySession")
            .WithSummary("Ends one of the caller's sessions; its refresh token stops working and its access tokens within seconds.");
        group.MapPost("/password", ChangePasswordAsync).WithName("ChangeMyPassword")
            .WithSummary("Changes the caller's password, ends every other session and revokes the account's API keys (unless keepApiKeys). Wrong current passwords count toward the login lockout.");
        return group;
    }

    private static async Task<Results<Ok<MeResponse>, ProblemHttpResult>> GetAsync(
        HttpContext context, UserStore users, ClientStore clients, RoleStore roles, CancellationToken cancellationToken)
    {
        var principal = context.User;
        var roleNames = principal.RolesOf();
        var permissions = (await roles.PermissionsOfAsync(roleNames, cancellationToken)).Order(StringComparer.Ordinal).ToList();
        var authMethod = principal.FindFirst(FundamentClaims.AuthMethod)?.Value ?? "jwt";
        if (principal.UserId() is { } userId && await users.GetAsync(userId, cancellationToken) is { } user)
        {
            return TypedResults.Ok(new MeResponse("user", user.Id, user.Username, user.Email, roleNames, permissions, authMethod,
                principal.FindFirst(FundamentClaims.SessionId)?.Value));
        }
        if (principal.ClientIdOf() is { } clientId && await clients.GetAsync(clientId, cancellationToken) is { } client)
        {
            return TypedResults.Ok(new MeResponse("client", client.ClientId, client.Name, null, roleNames, permissions, authMethod, null));
        }
        return Problems.NotFound("The caller");
    }

    private static async Task<Results<Ok<IReadOnlyList<SessionResponse>>, ValidationProblem, ProblemHttpResult>> SessionsAsync(
        int? limit, string? after, HttpContext context, SessionStore sessions, CancellationToken cancellationToken)
    {
        if (context.User.UserId() is not { } userId)
        {
            return Problems.Forbidden("Service clients have no sessions.");
        }
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var rows = await sessions.ListActiveAsync(userId, context.User.FindFirst(FundamentClaims.SessionId)?.Value, after, Paging.Take(size), cancellationToken);
        return TypedResults.Ok(Paging.Page(context, rows, size, s => s.Id));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> EndSessionAsync(
        string id, HttpContext context, IDatabase database, SessionStore sessions, PrincipalStatus status, IAuditLog audit, CancellationToken cancellationToken)
    {
        if (context.User.UserId() is not { } userId)
        {
            return Problems.NotFound("The session");
        }
        var ended = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await sessions.RevokeAsync(id, userId, "ended_by_user", cancellationToken))
            {
                return false;
            }
            status.Invalidate();
            await audit.AppendAsync(new AuditEvent("session.end", AuditOutcome.Success) { Target = $"session:{id}" }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        return ended ? TypedResults.NoContent() : Problems.NotFound("The session");
    }

    /// <summary>What a password change needs besides the request.</summary>
    internal sealed record PasswordServices(
        IDatabase Database, UserStore Users, PasswordHasher Hasher, PasswordPolicy Policy, LoginThrottle Throttle,
        SessionStore Sessions, ApiKeyStore Keys, PrincipalStatus Status, IAuditLog Audit);

    /// <remarks>
    /// The current password is checked under the same throttle as logins (per account, with a
    /// growing lockout): a stolen access token must not become a way to guess the password. On
    /// success, in one unit of work: the new hash, every other session ended, the account's API
    /// keys revoked unless <c>keepApiKeys</c>, and the audit entry.
    /// </remarks>
    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> ChangePasswordAsync(
        ChangePasswordRequest request, HttpContext context, [AsParameters] PasswordServices s, CancellationToken cancellationToken)
    {
        if (context.User.UserId() is not { } userId || await s.Users.GetAsync(userId, cancellationToken) is not { } user)
        {
            return Problems.Forbidden("Only users have passwords.");
        }
        if (await s.Throttle.LockedForAsync(user.Username, cancellationToken) is { } lockedFor)
        {
            return TooManyAttempts(context, lockedFor);
        }
        if (string.IsNullOrEmpty(request.CurrentPassword) || request.CurrentPassword.Length > PasswordPolicy.MaxLength ||
            !s.Hasher.Verify(request.CurrentPassword, user.PasswordHash, out _))
        {
            var lockout = await s.Database.InUnitOfWorkAsync(async () =>
            {
                var lockout = await s.Throttle.RecordFailureAsync(user.Username, cancellationToken);
                await s.Audit.AppendAsync(new AuditEvent("user.password_change", AuditOutcome.Failure) { Target = $"user:{userId}" }.From(context), cancellationToken);
                return lockout;
            }, cancellationToken);
            return lockout is { } locked ? TooManyAttempts(context, locked) : Problems.Validation("currentPassword", "The current password is wrong.");
        }
        if (s.Policy.Check(request.NewPassword, user.Username) is { } problem)
        {
            return Problems.Validation("newPassword", problem);
        }
        var hash = s.Hasher.Hash(request.NewPassword!);
        var current = context.User.FindFirst(FundamentClaims.SessionId)?.Value;
        await s.Database.InUnitOfWorkAsync(async () =>
        {
            await s.Users.UpdateAsync(userId, new UserChanges(PasswordHash: hash), cancellationToken);
            var ended = 0;
            foreach (var session in await s.Sessions.ListActiveAsync(userId, current, cancellationToken))
            {
                if (!session.Current && await s.Sessions.RevokeAsync(session.Id, userId, "password_changed", cancellationToken))
                {
                    ended++;
                }
            }
            var revoked = request.KeepApiKeys == true ? 0 : await s.Keys.RevokeAllAsync(userId, cancellationToken);
            await s.Throttle.ResetAsync(user.Username, cancellationToken);
            s.Status.Invalidate();
            await s.Audit.AppendAsync(new AuditEvent("user.password_change", AuditOutcome.Success)
            {
                Target = $"user:{userId}",
                Details = new Dictionary<string, string>
                {
                    ["sessionsEnded"] = ended.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["apiKeysRevoked"] = revoked.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["keptApiKeys"] = request.KeepApiKeys == true ? "true" : "false",
                },
            }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.NoContent();
    }

    private static ProblemHttpResult TooManyAttempts(HttpContext context, TimeSpan lockedFor)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(lockedFor.TotalSeconds));
        context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many failed attempts",
            detail: $"Too many wrong passwords for this account. Try again in {seconds} seconds.");
    }
}

/// <summary>Answer of <c>GET /api/v1/me</c>.</summary>
/// <param name="Type"><c>user</c> or <c>client</c>.</param>
/// <param name="AuthMethod"><c>jwt</c> or <c>apikey</c>.</param>
public sealed record MeResponse(string Type, string Id, string Name, string? Email, IReadOnlyList<string> Roles, IReadOnlyList<string> Permissions, string AuthMethod, string? SessionId);
