using Fundament.Audit;
using Fundament.Http;
using Fundament.Identity.Authentication;
using Fundament.Identity.Clients;
using Fundament.Identity.Login;
using Fundament.Identity.Passwords;
using Fundament.Identity.Roles;
using Fundament.Identity.Users;
using Fundament.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Fundament.Identity.Sessions;

internal static class MeApi
{
    public static RouteGroupBuilder MapMeApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/me").WithTags("Me").RequireAuthorization(Policies.Authenticated);
        group.MapGet("", GetAsync).WithName("GetMe").WithSummary("The caller: user or service client, roles and effective permissions.");
        group.MapGet("/sessions", SessionsAsync).WithName("ListMySessions");
        group.MapDelete("/sessions/{id}", EndSessionAsync).WithName("EndMySession")
            .WithSummary("Ends one of the caller's sessions; its refresh token stops working and its access tokens within seconds.");
        group.MapPost("/password", ChangePasswordAsync).WithName("ChangeMyPassword")
            .WithSummary("Changes the caller's password and ends every other session.");
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

    private static async Task<Results<Ok<IReadOnlyList<SessionResponse>>, ProblemHttpResult>> SessionsAsync(
        HttpContext context, SessionStore sessions, CancellationToken cancellationToken) =>
        context.User.UserId() is { } userId
            ? TypedResults.Ok(await sessions.ListActiveAsync(userId, context.User.FindFirst(FundamentClaims.SessionId)?.Value, cancellationToken))
            : Problems.Forbidden("Service clients have no sessions.");

    private static async Task<Results<NoContent, ProblemHttpResult>> EndSessionAsync(
        string id, HttpContext context, SessionStore sessions, PrincipalStatus status, IAuditLog audit, CancellationToken cancellationToken)
    {
        if (context.User.UserId() is not { } userId || !await sessions.RevokeAsync(id, userId, "ended_by_user", cancellationToken))
        {
            return Problems.NotFound("The session");
        }
        status.Invalidate();
        await audit.AppendAsync(new AuditEvent("session.end", AuditOutcome.Success) { Target = $"session:{id}" }.From(context), cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> ChangePasswordAsync(
        ChangePasswordRequest request, HttpContext context, UserStore users, PasswordHasher hasher, PasswordPolicy policy,
        SessionStore sessions, PrincipalStatus status, IAuditLog audit, CancellationToken cancellationToken)
    {
        if (context.User.UserId() is not { } userId || await users.GetAsync(userId, cancellationToken) is not { } user)
        {
            return Problems.Forbidden("Only users have passwords.");
        }
        if (string.IsNullOrEmpty(request.CurrentPassword) || request.CurrentPassword.Length > PasswordPolicy.MaxLength ||
            !hasher.Verify(request.CurrentPassword, user.PasswordHash, out _))
        {
            await audit.AppendAsync(new AuditEvent("user.password_change", AuditOutcome.Failure) { Target = $"user:{userId}" }.From(context), cancellationToken);
            return Problems.Validation("currentPassword", "The current password is wrong.");
        }
        if (policy.Check(request.NewPassword, user.Username) is { } problem)
        {
            return Problems.Validation("newPassword", problem);
        }
        await users.UpdateAsync(userId, new UserChanges(PasswordHash: hasher.Hash(request.NewPassword!)), cancellationToken);
        var current = context.User.FindFirst(FundamentClaims.SessionId)?.Value;
        foreach (var session in await sessions.ListActiveAsync(userId, current, cancellationToken))
        {
            if (!session.Current)
            {
                await sessions.RevokeAsync(session.Id, userId, "password_changed", cancellationToken);
            }
        }
        status.Invalidate();
        await audit.AppendAsync(new AuditEvent("user.password_change", AuditOutcome.Success) { Target = $"user:{userId}" }.From(context), cancellationToken);
        return TypedResults.NoContent();
    }
}

/// <summary>Answer of <c>GET /api/v1/me</c>.</summary>
/// <param name="Type"><c>user</c> or <c>client</c>.</param>
/// <param name="AuthMethod"><c>jwt</c> or <c>apikey</c>.</param>
public sealed record MeResponse(string Type, string Id, string Name, string? Email, IReadOnlyList<string> Roles, IReadOnlyList<string> Permissions, string AuthMethod, string? SessionId);
