using System.Net.Mail;
using System.Text.RegularExpressions;
using Fundament.Audit;
using Fundament.Http;
using Fundament.Identity.Authentication;
using Fundament.Identity.Passwords;
using Fundament.Identity.Roles;
using Fundament.Identity.Sessions;
using Fundament.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Fundament.Identity.Users;

internal static partial class UsersApi
{
    public static RouteGroupBuilder MapUsersApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/users").WithTags("Users");
        group.MapPost("", CreateAsync).RequireAuthorization(Permissions.UsersWrite).WithName("CreateUser");
        group.MapGet("", ListAsync).RequireAuthorization(Permissions.UsersRead).WithName("ListUsers")
            .WithSummary("Users ordered by username; q filters by username prefix.");
        group.MapGet("/{id}", GetAsync).RequireAuthorization(Permissions.UsersRead).WithName("GetUser");
        group.MapPatch("/{id}", UpdateAsync).RequireAuthorization(Permissions.UsersWrite).WithName("UpdateUser");
        group.MapPost("/{id}/disable", DisableAsync).RequireAuthorization(Permissions.UsersWrite).WithName("DisableUser")
            .WithSummary("Disables the user and ends their sessions; their tokens stop working within seconds.");
        group.MapPost("/{id}/enable", EnableAsync).RequireAuthorization(Permissions.UsersWrite).WithName("EnableUser");
        group.MapDelete("/{id}", DeleteAsync).RequireAuthorization(Permissions.UsersWrite).WithName("DeleteUser");
        return group;
    }

    [GeneratedRegex("^[A-Za-z0-9._@-]{3,64}$")]
    private static partial Regex UsernamePattern();

    internal static void ValidateEmail(ValidationErrors errors, string? email)
    {
        if (email is { Length: > 0 } && (email.Length > 254 || !MailAddress.TryCreate(email, out var parsed) || parsed.Address != email))
        {
            errors.Add("email", "email is not a valid address.");
        }
    }

    private static async Task<Results<Created<UserResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateUserRequest request, UserStore users, PasswordPolicy policy, PasswordHasher hasher, RoleGuard guard, IAuditLog audit,
        HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("username", request.Username);
        if (request.Username is { Length: > 0 } name && !UsernamePattern().IsMatch(name))
        {
            errors.Add("username", "username must be 3-64 characters of letters, digits and . _ - @.");
        }
        if (policy.Check(request.Password, request.Username) is { } passwordProblem)
        {
            errors.Add("password", passwordProblem);
        }
        ValidateEmail(errors, request.Email);
        var roles = request.Roles ?? [RoleStore.User];
        if (roles.Count > 50)
        {
            errors.Add("roles", "At most 50 roles.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var check = await guard.CheckAssignableAsync(context.User, roles, cancellationToken);
        if (!check.Allowed)
        {
            return check.IsForbidden ? Problems.Forbidden(check.Message!) : Problems.Validation("roles", check.Message!);
        }
        var user = await users.CreateAsync(request.Username!, NullIfEmpty(request.Email), hasher.Hash(request.Password!), roles, cancellationToken);
        if (user is null)
        {
            return Problems.Conflict("A user with this username already exists.");
        }
        await audit.AppendAsync(new AuditEvent("user.create", AuditOutcome.Success)
        {
            Target = $"user:{user.Id}",
            Details = new Dictionary<string, string> { ["username"] = user.Username, ["roles"] = string.Join(",", user.Roles) },
        }.From(context), cancellationToken);
        return TypedResults.Created($"/api/v1/users/{user.Id}", user.ToResponse());
    }

    private static async Task<Results<Ok<UserPage>, ValidationProblem>> ListAsync(
        UserStore users, int? page, int? pageSize, string? q, CancellationToken cancellationToken)
    {
        var p = page ?? 1;
        var size = pageSize ?? 50;
        if (p < 1 || p > 1_000_000)
        {
            return Problems.Validation("page", "page must be between 1 and 1000000.");
        }
        if (size is < 1 or > 500)
        {
            return Problems.Validation("pageSize", "pageSize must be between 1 and 500.");
        }
        if (q is { Length: > 64 })
        {
            return Problems.Validation("q", "q must be at most 64 characters.");
        }
        var (items, total) = await users.ListAsync(p, size, q, cancellationToken);
        return TypedResults.Ok(new UserPage(items.Select(u => u.ToResponse()).ToList(), p, size, total));
    }

    private static async Task<Results<Ok<UserResponse>, ProblemHttpResult>> GetAsync(string id, UserStore users, CancellationToken cancellationToken) =>
        await users.GetAsync(id, cancellationToken) is { } user ? TypedResults.Ok(user.ToResponse()) : Problems.NotFound("The user");

    private static async Task<Results<Ok<UserResponse>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        string id, UpdateUserRequest request, UserStore users, PasswordPolicy policy, PasswordHasher hasher, RoleGuard guard,
        SessionStore sessions, PrincipalStatus status, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(id, cancellationToken);
        if (user is null)
        {
            return Problems.NotFound("The user");
        }
        var errors = new ValidationErrors();
        ValidateEmail(errors, request.Email);
        if (request.Password is not null && policy.Check(request.Password, user.Username) is { } passwordProblem)
        {
            errors.Add("password", passwordProblem);
        }
        if (request.Roles is { Count: > 50 })
        {
            errors.Add("roles", "At most 50 roles.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (request.Roles is not null)
        {
            var check = await guard.CheckAssignableAsync(context.User, request.Roles, cancellationToken);
            if (!check.Allowed)
            {
                return check.IsForbidden ? Problems.Forbidden(check.Message!) : Problems.Validation("roles", check.Message!);
            }
            // Taking roles away is escalation-checked too: a caller may not strip a role they could not grant.
            var removed = user.Roles.Except(request.Roles, StringComparer.Ordinal).ToList();
            var removeCheck = await guard.CheckAssignableAsync(context.User, removed, cancellationToken);
            if (removeCheck.IsForbidden)
            {
                return Problems.Forbidden(removeCheck.Message!);
            }
        }
        var losesAdmin = user.Roles.Contains(RoleStore.Admin) && !user.Disabled &&
            (request.Disabled == true || (request.Roles is not null && !request.Roles.Contains(RoleStore.Admin)));
        if (losesAdmin && await users.CountEnabledWithRoleAsync(RoleStore.Admin, user.Id, cancellationToken) == 0)
        {
            return Problems.Conflict("This is the last enabled admin; make another admin first.");
        }

        await users.UpdateAsync(id, new UserChanges(
            Email: request.Email,
            PasswordHash: request.Password is null ? null : hasher.Hash(request.Password),
            Disabled: request.Disabled,
            Roles: request.Roles), cancellationToken);
        if (request.Password is not null || request.Disabled == true)
        {
            await sessions.RevokeAllAsync(id, request.Disabled == true ? "user_disabled" : "password_changed", cancellationToken);
        }
        status.Invalidate();
        var changed = new List<string>();
        if (request.Email is not null) { changed.Add("email"); }
        if (request.Password is not null) { changed.Add("password"); }
        if (request.Roles is not null) { changed.Add("roles"); }
        if (request.Disabled is not null) { changed.Add("disabled"); }
        var details = new Dictionary<string, string> { ["changed"] = string.Join(",", changed) };
        if (request.Roles is not null)
        {
            details["roles"] = string.Join(",", request.Roles);
        }
        if (request.Disabled is { } disabled)
        {
            details["disabled"] = disabled ? "true" : "false";
        }
        await audit.AppendAsync(new AuditEvent("user.update", AuditOutcome.Success) { Target = $"user:{id}", Details = details }.From(context), cancellationToken);
        return TypedResults.Ok((await users.GetAsync(id, cancellationToken))!.ToResponse());
    }

    private static Task<Results<Ok<UserResponse>, ValidationProblem, ProblemHttpResult>> DisableAsync(
        string id, UserStore users, PasswordPolicy policy, PasswordHasher hasher, RoleGuard guard,
        SessionStore sessions, PrincipalStatus status, IAuditLog audit, HttpContext context, CancellationToken cancellationToken) =>
        UpdateAsync(id, new UpdateUserRequest(null, null, null, true), users, policy, hasher, guard, sessions, status, audit, context, cancellationToken);

    private static Task<Results<Ok<UserResponse>, ValidationProblem, ProblemHttpResult>> EnableAsync(
        string id, UserStore users, PasswordPolicy policy, PasswordHasher hasher, RoleGuard guard,
        SessionStore sessions, PrincipalStatus status, IAuditLog audit, HttpContext context, CancellationToken cancellationToken) =>
        UpdateAsync(id, new UpdateUserRequest(null, null, null, false), users, policy, hasher, guard, sessions, status, audit, context, cancellationToken);

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string id, UserStore users, RoleGuard guard, PrincipalStatus status, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var user = await users.GetAsync(id, cancellationToken);
        if (user is null)
        {
            return Problems.NotFound("The user");
        }
        if ((await guard.CheckAssignableAsync(context.User, user.Roles, cancellationToken)).IsForbidden)
        {
            return Problems.Forbidden("You cannot delete a user who holds permissions you do not hold.");
        }
        if (user.Roles.Contains(RoleStore.Admin) && !user.Disabled && await users.CountEnabledWithRoleAsync(RoleStore.Admin, user.Id, cancellationToken) == 0)
        {
            return Problems.Conflict("This is the last enabled admin; make another admin first.");
        }
        await users.DeleteAsync(id, cancellationToken);
        status.Invalidate();
        await audit.AppendAsync(new AuditEvent("user.delete", AuditOutcome.Success)
        {
            Target = $"user:{id}",
            Details = new Dictionary<string, string> { ["username"] = user.Username },
        }.From(context), cancellationToken);
        return TypedResults.NoContent();
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
