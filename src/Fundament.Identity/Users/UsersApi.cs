using System.Globalization;
using System.Net.Mail;
using System.Text.RegularExpressions;
using Fundament.Identity.ApiKeys;
using Fundament.Identity.Authentication;
using Fundament.Identity.Passwords;
using Fundament.Identity.Roles;
using Fundament.Identity.Sessions;

namespace Fundament.Identity.Users;

internal static partial class UsersApi
{
    public static RouteGroupBuilder MapUsersApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/users").WithTags("Users");
        group.MapPost("", CreateAsync).RequireAuthorization(IdentityPermissions.UsersWrite).WithName("CreateUser").WithSummary("Create a user");
        group.MapGet("", ListAsync).RequireAuthorization(IdentityPermissions.UsersRead).WithName("ListUsers")
            .WithSummary("Users ordered by username; q filters by username prefix.");
        group.MapGet("/{id}", GetAsync).RequireAuthorization(IdentityPermissions.UsersRead).WithName("GetUser").WithSummary("Get a user");
        group.MapPatch("/{id}", UpdateAsync).RequireAuthorization(IdentityPermissions.UsersWrite).WithName("UpdateUser").WithSummary("Change a user (password, email, roles, disabled)");
        group.MapPost("/{id}/disable", DisableAsync).RequireAuthorization(IdentityPermissions.UsersWrite).WithName("DisableUser")
            .WithSummary("Disables the user and ends their sessions; their tokens stop working within seconds.");
        group.MapPost("/{id}/enable", EnableAsync).RequireAuthorization(IdentityPermissions.UsersWrite).WithName("EnableUser").WithSummary("Enable a disabled user");
        group.MapDelete("/{id}", DeleteAsync).RequireAuthorization(IdentityPermissions.UsersWrite).WithName("DeleteUser").WithSummary("Delete a user");
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

    /// <summary>What the user endpoints that change something need besides the request.</summary>
    internal sealed record UserServices(
        IDatabase Database,
        UserStore Users,
        PasswordPolicy Policy,
        PasswordHasher Hasher,
        RoleGuard Guard,
        SessionStore Sessions,
        ApiKeyStore Keys,
        PrincipalStatus Status,
        IAuditLog Audit);

    private static async Task<Results<Created<UserResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateUserRequest request, [AsParameters] UserServices s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("username", request.Username);
        if (request.Username is { Length: > 0 } name && !UsernamePattern().IsMatch(name))
        {
            errors.Add("username", "username must be 3-64 characters of letters, digits and . _ - @.");
        }
        if (s.Policy.Check(request.Password, request.Username) is { } passwordProblem)
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
        var check = await s.Guard.CheckAssignableAsync(context.User, roles, cancellationToken);
        if (!check.Allowed)
        {
            return check.IsForbidden ? check.Forbidden() : Problems.Validation("roles", check.Message!);
        }
        var hash = s.Hasher.Hash(request.Password!);
        var user = await s.Database.InUnitOfWorkAsync(async () =>
        {
            var created = await s.Users.CreateAsync(request.Username!, NullIfEmpty(request.Email), hash, roles, cancellationToken);
            if (created is not null)
            {
                await s.Audit.AppendAsync(new AuditEvent("user.create", AuditOutcome.Success)
                {
                    Target = $"user:{created.Id}",
                    Details = new Dictionary<string, string> { ["username"] = created.Username, ["roles"] = string.Join(",", created.Roles) },
                }.From(context), cancellationToken);
            }
            return created;
        }, cancellationToken);
        return user is null
            ? Problems.Conflict("A user with this username already exists.")
            : TypedResults.Created($"/api/v1/users/{user.Id}", user.ToResponse());
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

    /// <remarks>
    /// 1. Validate the fields (400).
    /// 2. The caller must hold every permission the user holds, whatever the change (password,
    ///    email, disabled, roles): otherwise a helpdesk role could reset an administrator's
    ///    password and sign in as them (403 naming what is missing).
    /// 3. Roles given or taken away must be ones the caller could grant.
    /// 4. Keep an enabled administrator.
    /// 5. Store the change, end the sessions and revoke the API keys a new password or a disabled
    ///    account calls for, and audit it, in one unit of work.
    /// </remarks>
    private static async Task<Results<Ok<UserResponse>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        string id, UpdateUserRequest request, [AsParameters] UserServices s, HttpContext context, CancellationToken cancellationToken)
    {
        var user = await s.Users.GetAsync(id, cancellationToken);
        if (user is null)
        {
            return Problems.NotFound("The user");
        }
        var errors = new ValidationErrors();
        ValidateEmail(errors, request.Email);
        if (request.Password is not null && s.Policy.Check(request.Password, user.Username) is { } passwordProblem)
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
        if (await s.Guard.CheckSubjectAsync(context.User, $"user:{user.Id}", user.Roles, $"user '{user.Username}'", cancellationToken) is { Allowed: false } subject)
        {
            return subject.Forbidden();
        }
        if (request.Roles is not null)
        {
            var check = await s.Guard.CheckAssignableAsync(context.User, request.Roles, cancellationToken);
            if (!check.Allowed)
            {
                return check.IsForbidden ? check.Forbidden() : Problems.Validation("roles", check.Message!);
            }
        }
        var losesAdmin = user.Roles.Contains(RoleStore.Admin) && !user.Disabled &&
            (request.Disabled == true || (request.Roles is not null && !request.Roles.Contains(RoleStore.Admin)));
        if (losesAdmin && await s.Users.CountEnabledWithRoleAsync(RoleStore.Admin, user.Id, cancellationToken) == 0)
        {
            return Problems.Conflict("This is the last enabled admin; make another admin first.");
        }

        var hash = request.Password is null ? null : s.Hasher.Hash(request.Password);
        await s.Database.InUnitOfWorkAsync(async () =>
        {
            await s.Users.UpdateAsync(id, new UserChanges(Email: request.Email, PasswordHash: hash, Disabled: request.Disabled, Roles: request.Roles), cancellationToken);
            var details = new Dictionary<string, string> { ["changed"] = string.Join(",", Changed(request)) };
            if (request.Password is not null || request.Disabled == true)
            {
                // A password set by someone else, or a disabled account: nothing the holder had keeps working.
                var reason = request.Disabled == true ? "user_disabled" : "password_set_by_admin";
                details["sessionsEnded"] = (await s.Sessions.RevokeAllAsync(id, reason, cancellationToken)).ToString(CultureInfo.InvariantCulture);
                details["apiKeysRevoked"] = (await s.Keys.RevokeAllAsync(id, cancellationToken)).ToString(CultureInfo.InvariantCulture);
            }
            if (request.Roles is not null)
            {
                details["roles"] = string.Join(",", request.Roles);
            }
            if (request.Disabled is { } disabled)
            {
                details["disabled"] = disabled ? "true" : "false";
            }
            s.Status.Invalidate();
            await s.Audit.AppendAsync(new AuditEvent("user.update", AuditOutcome.Success) { Target = $"user:{id}", Details = details }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.Ok((await s.Users.GetAsync(id, cancellationToken))!.ToResponse());
    }

    private static IEnumerable<string> Changed(UpdateUserRequest request)
    {
        if (request.Email is not null) { yield return "email"; }
        if (request.Password is not null) { yield return "password"; }
        if (request.Roles is not null) { yield return "roles"; }
        if (request.Disabled is not null) { yield return "disabled"; }
    }

    private static Task<Results<Ok<UserResponse>, ValidationProblem, ProblemHttpResult>> DisableAsync(
        string id, [AsParameters] UserServices s, HttpContext context, CancellationToken cancellationToken) =>
        UpdateAsync(id, new UpdateUserRequest(null, null, null, true), s, context, cancellationToken);

    private static Task<Results<Ok<UserResponse>, ValidationProblem, ProblemHttpResult>> EnableAsync(
        string id, [AsParameters] UserServices s, HttpContext context, CancellationToken cancellationToken) =>
        UpdateAsync(id, new UpdateUserRequest(null, null, null, false), s, context, cancellationToken);

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string id, [AsParameters] UserServices s, HttpContext context, CancellationToken cancellationToken)
    {
        var user = await s.Users.GetAsync(id, cancellationToken);
        if (user is null)
        {
            return Problems.NotFound("The user");
        }
        if (await s.Guard.CheckSubjectAsync(context.User, $"user:{user.Id}", user.Roles, $"user '{user.Username}'", cancellationToken) is { Allowed: false } subject)
        {
            return subject.Forbidden();
        }
        if (user.Roles.Contains(RoleStore.Admin) && !user.Disabled && await s.Users.CountEnabledWithRoleAsync(RoleStore.Admin, user.Id, cancellationToken) == 0)
        {
            return Problems.Conflict("This is the last enabled admin; make another admin first.");
        }
        await s.Database.InUnitOfWorkAsync(async () =>
        {
            await s.Users.DeleteAsync(id, cancellationToken);
            s.Status.Invalidate();
            await s.Audit.AppendAsync(new AuditEvent("user.delete", AuditOutcome.Success)
            {
                Target = $"user:{id}",
                Details = new Dictionary<string, string> { ["username"] = user.Username },
            }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.NoContent();
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
