using System.Globalization;
using Fundament.Core.Notifications;
using Fundament.Identity.ApiKeys;
using Fundament.Identity.Authentication;
using Fundament.Identity.Passwords;
using Fundament.Identity.Sessions;
using Fundament.Identity.Users;
using Microsoft.Net.Http.Headers;

namespace Fundament.Identity.Login;

internal static class AuthApi
{
    public static RouteGroupBuilder MapAuthApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/auth").WithTags("Authentication").AllowAnonymous();
        group.MapPost("/login", LoginAsync).WithName("Login")
            .WithSummary("Exchanges a username and password for an access token and a refresh token.");
        group.MapPost("/refresh", RefreshAsync).WithName("Refresh")
            .WithSummary("Rotates a refresh token. Presenting a token that was already rotated ends its whole session.");
        group.MapPost("/logout", LogoutAsync).WithName("Logout")
            .WithSummary("Ends the session (refresh token family) the token belongs to.");
        group.MapPost("/password-reset", RequestResetAsync).WithName("RequestPasswordReset")
            .WithSummary("Sends a single-use reset token to the account's email. Always 202, whether or not the account exists.");
        group.MapPost("/password-reset/confirm", ConfirmResetAsync).WithName("ConfirmPasswordReset")
            .WithSummary("Sets a new password with a reset token and ends every session of the account.");
        return group;
    }

    private static async Task<Results<Ok<TokenResponse>, ValidationProblem, ProblemHttpResult>> LoginAsync(
        LoginRequest request, LoginService login, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors()
            .Required("username", request.Username).MaxLength("username", request.Username, 256)
            .Required("password", request.Password).MaxLength("password", request.Password, PasswordPolicy.MaxLength);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var result = await login.LoginAsync(request.Username!, request.Password!, context.Connection.RemoteIpAddress?.ToString(),
            context.Request.Headers[HeaderNames.UserAgent].ToString(), cancellationToken);
        if (result.LockedFor is { } lockedFor)
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(lockedFor.TotalSeconds));
            context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many failed logins",
                detail: $"Too many failed logins for this username. Try again in {seconds} seconds.");
        }
        if (result.Challenge is { } challenge)
        {
            return Mfa.MfaApi.SecondFactorDue(challenge, result.EnrollmentRequired);
        }
        return result.Tokens is { } tokens
            ? TypedResults.Ok(tokens)
            : Problems.Unauthorized("The username or password is wrong.");
    }

    private static async Task<Results<Ok<TokenResponse>, ValidationProblem, ProblemHttpResult>> RefreshAsync(
        RefreshRequest request, LoginService login, HttpContext context, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.RefreshToken) || request.RefreshToken.Length > 512)
        {
            return Problems.Validation("refresh_token", "refresh_token is required.");
        }
        var tokens = await login.RefreshAsync(request.RefreshToken, context.Connection.RemoteIpAddress?.ToString(), cancellationToken);
        if (tokens is null)
        {
            return Problems.Unauthorized("The refresh token is invalid, expired or revoked.");
        }
        return TypedResults.Ok(tokens);
    }

    private static async Task<Results<NoContent, ValidationProblem>> LogoutAsync(
        RefreshRequest request, LoginService login, HttpContext context, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.RefreshToken) || request.RefreshToken.Length > 512)
        {
            return Problems.Validation("refresh_token", "refresh_token is required.");
        }
        await login.LogoutAsync(request.RefreshToken, context.Connection.RemoteIpAddress?.ToString(), cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Accepted, ValidationProblem>> RequestResetAsync(
        PasswordResetRequest request,
        IDatabase database,
        UserStore users,
        PasswordResetStore resets,
        INotificationSender sender,
        IAuditLog audit,
        IOptions<IdentityOptions> options,
        HttpContext context,
        CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Username) == string.IsNullOrWhiteSpace(request.Email))
        {
            return Problems.Validation("username", "Give exactly one of username and email.");
        }
        if (request.Username is { Length: > 256 } || request.Email is { Length: > 254 })
        {
            return Problems.Validation(request.Username is null ? "email" : "username", "The value is too long.");
        }
        var candidates = request.Username is { Length: > 0 } name
            ? (await users.FindByUsernameAsync(name, cancellationToken) is { } u ? [u] : [])
            : await users.FindByEmailAsync(request.Email!, cancellationToken);
        foreach (var user in candidates.Where(u => !u.Disabled && u.Email is not null))
        {
            // The token and its audit entry commit together; the mail goes out after (it may be slow).
            var token = await database.InUnitOfWorkAsync(async () =>
            {
                var issued = await resets.IssueAsync(user.Id, cancellationToken);
                if (issued is not null)
                {
                    await audit.AppendAsync(new AuditEvent("auth.password_reset.request", AuditOutcome.Success) { Target = $"user:{user.Id}" }.From(context), cancellationToken);
                }
                return issued;
            }, cancellationToken);
            if (token is null)
            {
                continue;
            }
            var minutes = (int)options.Value.PasswordResetTokenLifetime.TotalMinutes;
            var how = options.Value.PasswordResetUrl is { Length: > 0 } url
                ? url.Replace("{token}", Uri.EscapeDataString(token), StringComparison.Ordinal)
                : $"POST /api/v1/auth/password-reset/confirm with {{\"token\":\"{token}\",\"newPassword\":\"...\"}}";
            await sender.SendAsync(new NotificationMessage(user.Email!, "Reset your Fundament password",
                $"Someone asked to reset the password of the Fundament account '{user.Username}'. If it was you, within {minutes} minutes use:\n\n{how}\n\nIf it was not you, ignore this message; your password stays as it is."),
                cancellationToken);
        }
        return TypedResults.Accepted((string?)null);
    }

    private static async Task<Results<NoContent, ValidationProblem>> ConfirmResetAsync(
        PasswordResetConfirmRequest request,
        IDatabase database,
        UserStore users,
        ApiKeyStore keys,
        PasswordResetStore resets,
        PasswordPolicy policy,
        PasswordHasher hasher,
        SessionStore sessions,
        LoginThrottle throttle,
        PrincipalStatus status,
        IAuditLog audit,
        HttpContext context,
        CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Token) || request.Token.Length > 512)
        {
            return Problems.Validation("token", "token is required.");
        }
        var userId = await resets.UserOfAsync(request.Token, cancellationToken);
        var user = userId is null ? null : await users.GetAsync(userId, cancellationToken);
        if (user is null)
        {
            return Problems.Validation("token", "The reset token is invalid, used or expired.");
        }
        if (policy.Check(request.NewPassword, user.Username) is { } problem)
        {
            return Problems.Validation("newPassword", problem);
        }
        var hash = hasher.Hash(request.NewPassword!);
        // Whoever held the account before the reset loses everything they could have kept: sessions and API keys.
        var consumed = await database.InUnitOfWorkAsync(async () =>
        {
            if (await resets.ConsumeAsync(request.Token, cancellationToken) != user.Id)
            {
                return false;
            }
            await users.UpdateAsync(user.Id, new UserChanges(PasswordHash: hash), cancellationToken);
            var sessionCount = await sessions.RevokeAllAsync(user.Id, "password_reset", cancellationToken);
            var keyCount = await keys.RevokeAllAsync(user.Id, cancellationToken);
            await throttle.ResetAsync(user.Username, cancellationToken);
            status.Invalidate();
            await audit.AppendAsync(new AuditEvent("auth.password_reset.confirm", AuditOutcome.Success)
            {
                Actor = $"user:{user.Id}",
                ActorName = user.Username,
                Target = $"user:{user.Id}",
                Details = new Dictionary<string, string>
                {
                    ["sessionsEnded"] = sessionCount.ToString(CultureInfo.InvariantCulture),
                    ["apiKeysRevoked"] = keyCount.ToString(CultureInfo.InvariantCulture),
                },
            }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        if (!consumed)
        {
            return Problems.Validation("token", "The reset token is invalid, used or expired.");
        }
        return TypedResults.NoContent();
    }
}
