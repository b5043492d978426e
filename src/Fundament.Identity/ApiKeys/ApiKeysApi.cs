using Fundament.Core.Quotas;
using Fundament.Identity.Roles;

namespace Fundament.Identity.ApiKeys;

internal static class ApiKeysApi
{
    public static RouteGroupBuilder MapApiKeysApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/api-keys").WithTags("API keys").RequireAuthorization(IdentityPermissions.ApiKeysOwn);
        group.MapPost("", CreateAsync).WithName("CreateApiKey")
            .WithSummary("Creates a key for the caller, scoped to some or all of the caller's roles. The key is shown only in this answer.");
        group.MapGet("", ListAsync).WithName("ListApiKeys")
            .WithSummary("The caller's keys, revoked ones included, by id, newest first (ids are time-ordered), a page at a time: limit (1-500, default 100) and after "
                + "(the cursor in the Link rel=next header).");
        group.MapDelete("/{id}", RevokeAsync).WithName("RevokeApiKey").WithSummary("Revoke an API key");
        return group;
    }

    private static async Task<Results<Created<CreatedApiKeyResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateApiKeyRequest request, IDatabase database, ApiKeyStore keys, RoleGuard guard, IQuotas quotas, TimeProvider time, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        if (userId is null)
        {
            return Problems.Forbidden("Only users have API keys; service clients use client credentials.");
        }
        var errors = new ValidationErrors().Required("name", request.Name).MaxLength("name", request.Name, 100);
        if (request.ExpiresAt is { } expires && expires <= time.GetUtcNow())
        {
            errors.Add("expiresAt", "expiresAt must be in the future.");
        }
        if (request.Roles is { Count: > 50 })
        {
            errors.Add("roles", "At most 50 roles.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        // Checked against the caller as authenticated now, so a key made with a scoped key cannot exceed that key.
        var roles = request.Roles ?? context.User.RolesOf();
        // A key is a narrower copy of its owner: its roles' permissions, and whatever is bound to
        // them by name (vault policies, quota overrides), must be held by the caller.
        var check = await guard.CheckAssignableAsync(context.User, roles, cancellationToken);
        if (!check.Allowed)
        {
            return check.IsForbidden ? check.Forbidden() : Problems.Validation("roles", check.Message!);
        }
        var (key, secret) = await database.InUnitOfWorkAsync(async () =>
        {
            await quotas.EnsureAsync(QuotaSubject.Of(context.User), Quota.ApiKeys, 1, cancellationToken);
            var created = await keys.CreateAsync(userId, request.Name!, roles.Distinct().ToList(), request.ExpiresAt, cancellationToken);
            await audit.AppendAsync(new AuditEvent("apikey.create", AuditOutcome.Success)
            {
                Target = $"apikey:{created.Key.Id}",
                Details = new Dictionary<string, string> { ["name"] = created.Key.Name, ["roles"] = string.Join(",", created.Key.Roles) },
            }.From(context), cancellationToken);
            return created;
        }, cancellationToken);
        return TypedResults.Created($"/api/v1/api-keys/{key.Id}", new CreatedApiKeyResponse(key.Id, key.Name, secret, key.Prefix, key.Roles, key.CreatedAt, key.ExpiresAt));
    }

    private static async Task<Results<Ok<IReadOnlyList<ApiKeyResponse>>, ValidationProblem, ProblemHttpResult>> ListAsync(
        int? limit, string? after, ApiKeyStore keys, HttpContext context, CancellationToken cancellationToken)
    {
        if (context.User.UserId() is not { } userId)
        {
            return Problems.Forbidden("Only users have API keys.");
        }
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        return TypedResults.Ok(Paging.Page(context, await keys.ListAsync(userId, after, Paging.Take(size), cancellationToken), size, k => k.Id));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(
        string id, IDatabase database, ApiKeyStore keys, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (context.User.UserId() is not { } userId)
        {
            return Problems.NotFound("The API key");
        }
        var revoked = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await keys.RevokeAsync(userId, id, cancellationToken))
            {
                return false;
            }
            await audit.AppendAsync(new AuditEvent("apikey.revoke", AuditOutcome.Success) { Target = $"apikey:{id}" }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        return revoked ? TypedResults.NoContent() : Problems.NotFound("The API key");
    }
}
