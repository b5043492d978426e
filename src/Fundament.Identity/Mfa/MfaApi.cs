using System.Globalization;
using Fundament.Identity.Login;
using Fundament.Identity.Roles;
using Fundament.Identity.Tokens;
using Fundament.Identity.Users;
using Microsoft.Net.Http.Headers;

namespace Fundament.Identity.Mfa;

/// <summary>
/// Second factors over the API: the login's second step, enrolment and removal by the user, an
/// administrator's reset, and roles that require a factor. Every change is audited.
/// </summary>
internal static class MfaApi
{
    public const string ProblemType = "https://fundament.dev/problems/mfa-required";

    public static void MapMfaApi(this IEndpointRouteBuilder endpoints)
    {
        var auth = endpoints.MapGroup("/api/v1/auth").WithTags("Authentication").AllowAnonymous();
        auth.MapPost("/login/mfa", CompleteAsync).WithName("LoginSecondFactor")
            .WithSummary("The second step of a login that answered 401 mfa-required: a TOTP code or a recovery code with its mfa_token.");
        auth.MapPost("/mfa/enroll", EnrollDuringLoginAsync).WithName("EnrollSecondFactorDuringLogin")
            .WithSummary("For a login whose role requires a second factor the user does not have: a TOTP secret, confirmed by the code given to /login/mfa.");

        var me = endpoints.MapGroup("/api/v1/me/mfa").WithTags("Authentication").RequireAuthorization(Fundament.Core.Security.Policies.Authenticated);
        me.MapGet("", StatusAsync).WithName("GetMyMfa").WithSummary("The caller's second factors, unused recovery codes, and the roles that require a factor.");
        me.MapPost("/totp", BeginAsync).WithName("BeginMyTotp").WithSummary("Starts TOTP enrolment: a secret and its otpauth:// address (409 when one is confirmed).");
        me.MapPost("/totp/confirm", ConfirmAsync).WithName("ConfirmMyTotp").WithSummary("Confirms the TOTP secret with a code; returns ten recovery codes, once.");
        me.MapPost("/recovery-codes", RegenerateAsync).WithName("RegenerateMyRecoveryCodes").WithSummary("New recovery codes for a current TOTP code; the old ones stop working.");
        me.MapDelete("", RemoveAsync).WithName("RemoveMyMfa").WithSummary("Removes the caller's factors for a current TOTP or recovery code; 409 while a role requires one.");

        endpoints.MapDelete("/api/v1/users/{id}/mfa", ResetAsync).WithTags("Users").RequireAuthorization(IdentityPermissions.UsersWrite).WithName("ResetUserMfa")
            .WithSummary("Removes a user's second factors (a lost phone); never on a user holding more than the caller. The user enrols again at the next login if a role requires it.");
        endpoints.MapPut("/api/v1/roles/{name}/mfa", RequireAsync).WithTags("Roles").RequireAuthorization(IdentityPermissions.RolesWrite).WithName("SetRoleMfa")
            .WithSummary("Whether holders of the role must sign in with a second factor; those without one enrol at their next login.");
    }

    /// <summary>The answer to a right password when a second factor is due: 401 with the challenge token.</summary>
    public static ProblemHttpResult SecondFactorDue(string challenge, bool enrollmentRequired) =>
        TypedResults.Problem(
            statusCode: StatusCodes.Status401Unauthorized,
            title: "A second factor is required",
            detail: enrollmentRequired
                ? "A role of this account requires a second factor. Enrol one with POST /api/v1/auth/mfa/enroll and this mfa_token, then send its code to POST /api/v1/auth/login/mfa."
                : "Send a code from the authenticator app (or a recovery code) with this mfa_token to POST /api/v1/auth/login/mfa within five minutes.",
            type: ProblemType,
            extensions: new Dictionary<string, object?>
            {
                ["mfa_token"] = challenge,
                ["factors"] = enrollmentRequired ? new[] { "totp" } : new[] { "totp", "recovery_code" },
                ["enrollment_required"] = enrollmentRequired,
            });

    private static async Task<Results<Ok<MfaTokenResponse>, ValidationProblem, ProblemHttpResult>> CompleteAsync(
        MfaLoginRequest request, LoginService login, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("mfa_token", request.MfaToken).MaxLength("mfa_token", request.MfaToken, 128);
        if (request.Code is null == request.RecoveryCode is null)
        {
            errors.Add("code", "Give exactly one of code and recovery_code.");
        }
        if (request.Code is { } code && (code.Trim().Length != 6 || !code.Trim().All(char.IsAsciiDigit)))
        {
            errors.Add("code", "code is the 6 digits the authenticator app shows.");
        }
        if (request.RecoveryCode is { Length: > 32 })
        {
            errors.Add("recovery_code", "recovery_code is too long.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var result = await login.CompleteSecondFactorAsync(request.MfaToken!, request.Code, request.RecoveryCode,
            context.Connection.RemoteIpAddress?.ToString(), context.Request.Headers[HeaderNames.UserAgent].ToString(), cancellationToken);
        if (result.LockedFor is { } lockedFor)
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(lockedFor.TotalSeconds));
            context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many failed logins",
                detail: $"Too many failed logins for this username. Try again in {seconds} seconds.");
        }
        if (result.ChallengeExpired)
        {
            return Problems.Unauthorized("The mfa_token is unknown, expired or used up: sign in with the password again.");
        }
        if (result.Tokens is not { } tokens)
        {
            return Problems.Unauthorized("The code is wrong.");
        }
        return TypedResults.Ok(new MfaTokenResponse(tokens.AccessToken, tokens.RefreshToken, tokens.TokenType, tokens.ExpiresIn, result.RecoveryCodes));
    }

    private static async Task<Results<Ok<TotpEnrollment>, ValidationProblem, ProblemHttpResult>> EnrollDuringLoginAsync(
        MfaEnrollRequest request, MfaStore mfa, UserStore users, IssuerUri issuer, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.MfaToken) || request.MfaToken.Length > 128)
        {
            return Problems.Validation("mfa_token", "mfa_token is required.");
        }
        if (await mfa.AttemptChallengeAsync(request.MfaToken, cancellationToken) is not { } userId || await users.GetAsync(userId, cancellationToken) is not { Disabled: false } user)
        {
            return Problems.Unauthorized("The mfa_token is unknown, expired or used up: sign in with the password again.");
        }
        if (await mfa.BeginTotpAsync(user.Id, cancellationToken) is not { } secret)
        {
            return Problems.Conflict("This account has a second factor already: send its code to POST /api/v1/auth/login/mfa.");
        }
        await audit.AppendAsync(new AuditEvent("mfa.totp.begin", AuditOutcome.Success) { Actor = $"user:{user.Id}", ActorName = user.Username, Target = $"user:{user.Id}" }.From(context), cancellationToken);
        return TypedResults.Ok(Enrollment(issuer, user.Username, secret));
    }

    private static async Task<Results<Ok<MfaStatus>, ProblemHttpResult>> StatusAsync(MfaStore mfa, UserStore users, HttpContext context, CancellationToken cancellationToken)
    {
        if (await CallerAsync(users, context, cancellationToken) is not { } user)
        {
            return Problems.Forbidden("Second factors are managed by the signed-in user, not by service clients or API keys.");
        }
        return TypedResults.Ok(await mfa.StatusAsync(user.Id, user.Roles, cancellationToken));
    }

    private static async Task<Results<Ok<TotpEnrollment>, ProblemHttpResult>> BeginAsync(
        MfaStore mfa, UserStore users, IssuerUri issuer, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (await CallerAsync(users, context, cancellationToken) is not { } user)
        {
            return Problems.Forbidden("Second factors are managed by the signed-in user, not by service clients or API keys.");
        }
        if (await mfa.BeginTotpAsync(user.Id, cancellationToken) is not { } secret)
        {
            return Problems.Conflict("A TOTP factor is confirmed already; remove it first (DELETE /api/v1/me/mfa with a current code).");
        }
        await audit.AppendAsync(new AuditEvent("mfa.totp.begin", AuditOutcome.Success) { Target = $"user:{user.Id}" }.From(context), cancellationToken);
        return TypedResults.Ok(Enrollment(issuer, user.Username, secret));
    }

    private static async Task<Results<Ok<RecoveryCodesResponse>, ValidationProblem, ProblemHttpResult>> ConfirmAsync(
        MfaCodeRequest request, MfaStore mfa, UserStore users, LoginThrottle throttle, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var (user, check, refusal) = await CheckCodeAsync(request, confirming: true, "There is no TOTP enrolment to confirm: start one with POST /api/v1/me/mfa/totp.",
            mfa, users, throttle, context, cancellationToken);
        if (refusal is not null)
        {
            return refusal;
        }
        await audit.AppendAsync(new AuditEvent("mfa.totp.confirm", check.Outcome == TotpOutcome.Ok ? AuditOutcome.Success : AuditOutcome.Failure) { Target = $"user:{user!.Id}" }.From(context), cancellationToken);
        return check.Outcome == TotpOutcome.Ok
            ? TypedResults.Ok(new RecoveryCodesResponse(check.RecoveryCodes!))
            : Problems.Validation("code", "The code is wrong (or was used already): check the device's clock and try the next one.");
    }

    private static async Task<Results<Ok<RecoveryCodesResponse>, ValidationProblem, ProblemHttpResult>> RegenerateAsync(
        MfaCodeRequest request, MfaStore mfa, UserStore users, LoginThrottle throttle, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var (user, check, refusal) = await CheckCodeAsync(request, confirming: false, "There is no confirmed TOTP factor.", mfa, users, throttle, context, cancellationToken);
        if (refusal is not null)
        {
            return refusal;
        }
        if (check.Outcome != TotpOutcome.Ok)
        {
            await audit.AppendAsync(new AuditEvent("mfa.recovery_codes.regenerate", AuditOutcome.Failure) { Target = $"user:{user!.Id}" }.From(context), cancellationToken);
            return Problems.Validation("code", "The code is wrong (or was used already).");
        }
        var codes = await mfa.RegenerateRecoveryCodesAsync(user!.Id, cancellationToken);
        await audit.AppendAsync(new AuditEvent("mfa.recovery_codes.regenerate", AuditOutcome.Success) { Target = $"user:{user.Id}" }.From(context), cancellationToken);
        return TypedResults.Ok(new RecoveryCodesResponse(codes!));
    }

    /// <summary>
    /// The steps confirming an enrolment and regenerating recovery codes share: a signed-in user, a
    /// well-formed code, the lockout, the check itself, and a wrong code counted against the lockout.
    /// A refusal ends the request; otherwise the check (right or wrong) is the caller's to act on.
    /// </summary>
    private static async Task<(UserRecord? User, TotpCheck Check, Results<Ok<RecoveryCodesResponse>, ValidationProblem, ProblemHttpResult>? Refusal)> CheckCodeAsync(
        MfaCodeRequest request, bool confirming, string noFactor, MfaStore mfa, UserStore users, LoginThrottle throttle, HttpContext context, CancellationToken cancellationToken)
    {
        if (await CallerAsync(users, context, cancellationToken) is not { } user)
        {
            return (null, TotpCheck.NoFactor, Problems.Forbidden("Second factors are managed by the signed-in user, not by service clients or API keys."));
        }
        if (!ValidCode(request.Code))
        {
            return (user, TotpCheck.Wrong, Problems.Validation("code", "code is the 6 digits the authenticator app shows."));
        }
        if (await LockedAsync(throttle, user, context, cancellationToken) is { } locked)
        {
            return (user, TotpCheck.Wrong, locked);
        }
        var check = await mfa.CheckTotpAsync(user.Id, request.Code!, confirming, cancellationToken);
        if (check.Outcome == TotpOutcome.NoFactor)
        {
            return (user, check, Problems.Conflict(noFactor));
        }
        if (check.Outcome != TotpOutcome.Ok)
        {
            await throttle.RecordFailureAsync(user.Username, cancellationToken);
        }
        return (user, check, null);
    }

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> RemoveAsync(
        [Microsoft.AspNetCore.Mvc.FromBody] MfaRemoveRequest request, MfaStore mfa, UserStore users, LoginThrottle throttle, IDatabase database, IAuditLog audit,
        HttpContext context, CancellationToken cancellationToken)
    {
        if (await CallerAsync(users, context, cancellationToken) is not { } user)
        {
            return Problems.Forbidden("Second factors are managed by the signed-in user, not by service clients or API keys.");
        }
        if (request.Code is null == request.RecoveryCode is null || (request.Code is not null && !ValidCode(request.Code)))
        {
            return Problems.Validation("code", "Give a current code (6 digits) or a recovery code.");
        }
        var status = await mfa.StatusAsync(user.Id, user.Roles, cancellationToken);
        if (status.RequiredBy.Count > 0)
        {
            return Problems.Conflict($"The role(s) {string.Join(", ", status.RequiredBy)} require a second factor.");
        }
        if (await LockedAsync(throttle, user, context, cancellationToken) is { } locked)
        {
            return locked;
        }
        var proven = request.Code is not null
            ? (await mfa.CheckTotpAsync(user.Id, request.Code, confirming: false, cancellationToken)).Outcome == TotpOutcome.Ok
            : await mfa.UseRecoveryCodeAsync(user.Id, request.RecoveryCode!, cancellationToken);
        if (!proven)
        {
            await throttle.RecordFailureAsync(user.Username, cancellationToken);
            await audit.AppendAsync(new AuditEvent("mfa.remove", AuditOutcome.Failure) { Target = $"user:{user.Id}" }.From(context), cancellationToken);
            return Problems.Validation("code", "The code is wrong (or was used already).");
        }
        await database.InUnitOfWorkAsync(async () =>
        {
            await mfa.ResetAsync(user.Id, cancellationToken);
            await audit.AppendAsync(new AuditEvent("mfa.remove", AuditOutcome.Success) { Target = $"user:{user.Id}" }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> ResetAsync(
        string id, MfaStore mfa, UserStore users, RoleGuard guard, IDatabase database, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (await users.GetAsync(id, cancellationToken) is not { } user)
        {
            return Problems.NotFound("The user");
        }
        if (context.User.UserId() == user.Id)
        {
            // One's own factor goes with proof (DELETE /api/v1/me/mfa), never by holding users.write.
            return Problems.Forbidden("Remove your own second factor with DELETE /api/v1/me/mfa and a current code.");
        }
        // Resetting a factor is a step towards taking the account over: never on someone holding more than the caller.
        if (await guard.CheckSubjectAsync(context.User, $"user:{user.Id}", user.Roles, $"user '{user.Username}'", cancellationToken) is { Allowed: false } subject)
        {
            return subject.Forbidden();
        }
        await database.InUnitOfWorkAsync(async () =>
        {
            var had = await mfa.ResetAsync(user.Id, cancellationToken);
            await audit.AppendAsync(new AuditEvent("user.mfa.reset", AuditOutcome.Success)
            {
                Target = $"user:{user.Id}",
                Details = new Dictionary<string, string> { ["username"] = user.Username, ["had_factor"] = had ? "yes" : "no" },
            }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<RoleMfaResponse>, ValidationProblem, ProblemHttpResult>> RequireAsync(
        string name, RoleMfaRequest request, MfaStore mfa, RoleStore roles, RoleGuard guard, Sessions.SessionStore sessions, Authentication.PrincipalStatus status,
        IDatabase database, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (request.Required is not { } required)
        {
            return Problems.Validation("required", "required (true or false) is required.");
        }
        if (await roles.GetAsync(name, cancellationToken) is not { } role)
        {
            return Problems.NotFound("The role");
        }
        // Requiring a factor can lock a role's holders out until they enrol, and lifting it weakens the role: only for roles the caller
        // could assign (its permissions and whatever vault, registry or quota grants are bound to it).
        var check = await guard.CheckAssignableAsync(context.User, [role.Name], cancellationToken);
        if (!check.Allowed)
        {
            return check.Forbidden();
        }
        var revoked = 0;
        var found = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await mfa.SetRoleRequirementAsync(name, required, context.User.ActorId(), cancellationToken))
            {
                return false;
            }
            if (required)
            {
                // Sessions that began without a factor end now: their holders sign in again, and enrol.
                foreach (var holder in await mfa.HoldersWithoutFactorAsync(name, cancellationToken))
                {
                    revoked += await sessions.RevokeAllAsync(holder, "mfa required", cancellationToken);
                    status.Invalidate("user", holder);
                }
            }
            await audit.AppendAsync(new AuditEvent("role.mfa", AuditOutcome.Success)
            {
                Target = $"role:{name}",
                Details = new Dictionary<string, string>
                {
                    ["required"] = required ? "yes" : "no",
                    ["sessionsEnded"] = revoked.ToString(CultureInfo.InvariantCulture),
                },
            }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        if (!found)
        {
            return Problems.NotFound("The role");
        }
        return TypedResults.Ok(new RoleMfaResponse(name, required, await mfa.RolesRequiringAsync(cancellationToken)));
    }

    /// <summary>
    /// The signed-in user; null for service clients and API keys (a leaked key must not be able to enrol, regenerate or remove
    /// the owner's second factor).
    /// </summary>
    private static async Task<UserRecord?> CallerAsync(UserStore users, HttpContext context, CancellationToken cancellationToken) =>
        context.User.UserId() is { } userId && context.User.FindFirst(FundamentClaims.AuthMethod)?.Value != "apikey"
            ? await users.GetAsync(userId, cancellationToken)
            : null;

    /// <summary>
    /// A code given on /me/mfa counts like a login attempt: wrong ones towards the account's lockout, and none is checked while it is
    /// locked, so a stolen access token cannot guess its way to new recovery codes.
    /// </summary>
    private static async Task<ProblemHttpResult?> LockedAsync(LoginThrottle throttle, UserRecord user, HttpContext context, CancellationToken cancellationToken)
    {
        if (await throttle.LockedForAsync(user.Username, cancellationToken) is not { } lockedFor)
        {
            return null;
        }
        var seconds = Math.Max(1, (int)Math.Ceiling(lockedFor.TotalSeconds));
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many failed attempts",
            detail: $"Too many wrong codes or passwords for this account. Try again in {seconds} seconds.");
    }

    private static bool ValidCode(string? code) => code is { } c && c.Trim().Length == 6 && c.Trim().All(char.IsAsciiDigit);

    private static TotpEnrollment Enrollment(IssuerUri issuer, string username, byte[] secret)
    {
        var label = new Uri(issuer.Value).Host;
        return new TotpEnrollment(OtpNet.Base32Encoding.ToString(secret), MfaStore.OtpAuthUri(label, username, secret));
    }
}

public sealed record MfaLoginRequest(
    [property: System.Text.Json.Serialization.JsonPropertyName("mfa_token")] string? MfaToken,
    [property: System.Text.Json.Serialization.JsonPropertyName("code")] string? Code,
    [property: System.Text.Json.Serialization.JsonPropertyName("recovery_code")] string? RecoveryCode);

public sealed record MfaEnrollRequest([property: System.Text.Json.Serialization.JsonPropertyName("mfa_token")] string? MfaToken);

public sealed record MfaCodeRequest(string? Code);

public sealed record MfaRemoveRequest(
    string? Code,
    [property: System.Text.Json.Serialization.JsonPropertyName("recovery_code")] string? RecoveryCode);

/// <summary>The TOTP secret (base32) to type in, and the otpauth:// address to show as a QR code.</summary>
public sealed record TotpEnrollment(string Secret, string OtpauthUri);

/// <summary>Ten single-use recovery codes: shown once, keep them apart from the device.</summary>
public sealed record RecoveryCodesResponse(IReadOnlyList<string> RecoveryCodes);

public sealed record RoleMfaRequest(bool? Required);

public sealed record RoleMfaResponse(string Role, bool Required, IReadOnlyList<string> RolesRequiringMfa);

/// <summary>A token response; with the recovery codes, once, when the login enrolled the factor.</summary>
public sealed record MfaTokenResponse(
    [property: System.Text.Json.Serialization.JsonPropertyName("access_token")] string AccessToken,
    [property: System.Text.Json.Serialization.JsonPropertyName("refresh_token"), System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? RefreshToken,
    [property: System.Text.Json.Serialization.JsonPropertyName("token_type")] string TokenType,
    [property: System.Text.Json.Serialization.JsonPropertyName("expires_in")] int ExpiresIn,
    [property: System.Text.Json.Serialization.JsonPropertyName("recovery_codes"), System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? RecoveryCodes);
