using System.Text.RegularExpressions;

namespace Fundament.Identity.Roles;

internal static partial class RolesApi
{
    public static RouteGroupBuilder MapRolesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/roles").WithTags("Roles");
        group.MapGet("", ListAsync).RequireAuthorization(IdentityPermissions.RolesRead).WithName("ListRoles")
            .WithSummary("Roles by name, a page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        group.MapGet("/permissions", ListPermissions).RequireAuthorization(IdentityPermissions.RolesRead).WithName("ListPermissions")
            .WithSummary("Every permission a role can grant.");
        group.MapGet("/{name}", GetAsync).RequireAuthorization(IdentityPermissions.RolesRead).WithName("GetRole").WithSummary("Get a role and its permissions");
        group.MapPost("", CreateAsync).RequireAuthorization(IdentityPermissions.RolesWrite).WithName("CreateRole").WithSummary("Create a custom role");
        group.MapPut("/{name}", UpdateAsync).RequireAuthorization(IdentityPermissions.RolesWrite).WithName("UpdateRole")
            .WithSummary("Replaces a custom role's description and permissions. Built-in roles cannot change.");
        group.MapDelete("/{name}", DeleteAsync).RequireAuthorization(IdentityPermissions.RolesWrite).WithName("DeleteRole")
            .WithSummary("Deletes a custom role and removes it from every user.");
        return group;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{1,63}$")]
    private static partial Regex NamePattern();

    private static async Task<Results<Ok<IReadOnlyList<RoleResponse>>, ValidationProblem>> ListAsync(
        int? limit, string? after, RoleStore roles, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        return TypedResults.Ok(Paging.Page(context, await roles.ListAsync(after, Paging.Take(size), cancellationToken), size, r => r.Name));
    }

    private static Ok<IReadOnlyList<string>> ListPermissions(PermissionCatalog catalog) =>
        TypedResults.Ok<IReadOnlyList<string>>([Permissions.All, .. catalog.Known.Order(StringComparer.Ordinal)]);

    private static async Task<Results<Ok<RoleResponse>, ProblemHttpResult>> GetAsync(string name, RoleStore roles, CancellationToken cancellationToken) =>
        await roles.GetAsync(name, cancellationToken) is { } role ? TypedResults.Ok(role) : Problems.NotFound("The role");

    private static async Task<Results<Created<RoleResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        RoleRequest request, IDatabase database, RoleStore roles, RoleGuard guard, PermissionCatalog catalog, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("name", request.Name);
        if (request.Name is { Length: > 0 } n && !NamePattern().IsMatch(n))
        {
            errors.Add("name", "name must be 2-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit.");
        }
        ValidatePermissions(errors, request.Permissions, catalog.Known);
        ValidateDescription(errors, request.Description);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var check = await guard.CheckPermissionsAsync(context.User, request.Permissions!.ToHashSet(StringComparer.Ordinal), cancellationToken);
        if (!check.Allowed)
        {
            return check.Forbidden();
        }
        var created = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await roles.CreateAsync(request.Name!, request.Description, request.Permissions!.Distinct().ToList(), cancellationToken))
            {
                return false;
            }
            await audit.AppendAsync(new AuditEvent("role.create", AuditOutcome.Success)
            {
                Target = $"role:{request.Name}",
                Details = new Dictionary<string, string> { ["permissions"] = string.Join(",", request.Permissions!) },
            }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        if (!created)
        {
            return Problems.Conflict("A role with this name already exists.");
        }
        return TypedResults.Created($"/api/v1/roles/{request.Name}", (await roles.GetAsync(request.Name!, cancellationToken))!);
    }

    private static async Task<Results<Ok<RoleResponse>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        string name, RoleRequest request, IDatabase database, RoleStore roles, RoleGuard guard, PermissionCatalog catalog, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var existing = await roles.GetAsync(name, cancellationToken);
        if (existing is null)
        {
            return Problems.NotFound("The role");
        }
        if (existing.Builtin)
        {
            return Problems.Conflict("Built-in roles cannot be changed; create a custom role instead.");
        }
        var errors = new ValidationErrors();
        ValidatePermissions(errors, request.Permissions, catalog.Known);
        ValidateDescription(errors, request.Description);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var union = request.Permissions!.Concat(existing.Permissions).ToHashSet(StringComparer.Ordinal);
        var check = await guard.CheckPermissionsAsync(context.User, union, cancellationToken);
        if (!check.Allowed)
        {
            return check.Forbidden();
        }
        await database.InUnitOfWorkAsync(async () =>
        {
            await roles.UpdateAsync(name, request.Description, request.Permissions!.Distinct().ToList(), cancellationToken);
            await audit.AppendAsync(new AuditEvent("role.update", AuditOutcome.Success)
            {
                Target = $"role:{name}",
                Details = new Dictionary<string, string> { ["permissions"] = string.Join(",", request.Permissions!) },
            }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.Ok((await roles.GetAsync(name, cancellationToken))!);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string name, IDatabase database, RoleStore roles, RoleGuard guard, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var existing = await roles.GetAsync(name, cancellationToken);
        if (existing is null)
        {
            return Problems.NotFound("The role");
        }
        if (existing.Builtin)
        {
            return Problems.Conflict("Built-in roles cannot be deleted.");
        }
        var check = await guard.CheckPermissionsAsync(context.User, existing.Permissions.ToHashSet(StringComparer.Ordinal), cancellationToken);
        if (!check.Allowed)
        {
            return check.Forbidden();
        }
        await database.InUnitOfWorkAsync(async () =>
        {
            await roles.DeleteAsync(name, cancellationToken);
            await audit.AppendAsync(new AuditEvent("role.delete", AuditOutcome.Success) { Target = $"role:{name}" }.From(context), cancellationToken);
            return 0;
        }, cancellationToken);
        return TypedResults.NoContent();
    }

    private static void ValidatePermissions(ValidationErrors errors, IReadOnlyList<string>? permissions, IReadOnlySet<string> known)
    {
        if (permissions is null)
        {
            errors.Add("permissions", "permissions is required (it may be empty).");
            return;
        }
        if (permissions.Count > 200)
        {
            errors.Add("permissions", "At most 200 permissions.");
            return;
        }
        foreach (var permission in permissions)
        {
            if (permission != Permissions.All && !known.Contains(permission ?? ""))
            {
                errors.Add("permissions", $"Unknown permission '{(permission is { Length: > 64 } ? permission[..64] : permission)}'; see GET /api/v1/roles/permissions.");
            }
        }
    }

    private static void ValidateDescription(ValidationErrors errors, string? description) =>
        errors.MaxLength("description", description, 500);
}
