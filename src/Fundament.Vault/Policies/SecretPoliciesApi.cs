using System.Text.RegularExpressions;
using Fundament.Vault.Secrets;

namespace Fundament.Vault.Policies;

internal static partial class SecretPoliciesApi
{
    public static RouteGroupBuilder MapSecretPoliciesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/secret-policies").WithTags("Vault").RequireAuthorization(VaultPermissions.Policies);
        group.MapPost("", CreateAsync).WithName("CreateSecretPolicy").WithSummary("Create a secret access policy");
        group.MapGet("", ListAsync).WithName("ListSecretPolicies")
            .WithSummary("Path policies (of one principal, or all) by principal, path prefix and id. A page at a time: limit (1-500, default 100) and after "
                + "(the cursor in the Link rel=next header).");
        group.MapDelete("/{id}", DeleteAsync).WithName("DeleteSecretPolicy").WithSummary("Delete a secret access policy");
        return group;
    }

    [GeneratedRegex("^(client|user|role):[A-Za-z0-9._@-]{1,100}$")]
    private static partial Regex PrincipalPattern();

    private static async Task<Results<Created<PolicyResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreatePolicyRequest request, IDatabase database, SecretPolicyStore policies, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("principal", request.Principal);
        if (request.Principal is { Length: > 0 } principal && !PrincipalPattern().IsMatch(principal))
        {
            errors.Add("principal", "principal must be client:<id>, user:<id> or role:<name>.");
        }
        if (request.PathPrefix is null)
        {
            errors.Add("pathPrefix", "pathPrefix is required (an empty string covers every path).");
        }
        else if (request.PathPrefix.Length > 0 && SecretPath.Problem(request.PathPrefix.TrimEnd('/')) is { } problem)
        {
            errors.Add("pathPrefix", problem);
        }
        if (request.Capabilities is not { Count: > 0 } capabilities || capabilities.Any(c => !SecretPolicyStore.Capabilities.Contains(c ?? "")))
        {
            errors.Add("capabilities", "capabilities must list some of: read, write, list, delete.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        // vault.policies lets one hand out only what one holds: the capabilities, on the whole prefix.
        var access = await policies.AccessForAsync(context.User, cancellationToken);
        var missing = access.Missing(request.Capabilities!.Distinct(), request.PathPrefix!);
        if (missing.Count > 0)
        {
            return Problems.MissingPermissions(
                $"You cannot grant on '{request.PathPrefix}' what you do not hold there yourself: {string.Join(", ", missing)}.", missing);
        }
        var created = await database.InUnitOfWorkAsync(async () =>
        {
            var created = await policies.CreateAsync(request.Principal!, request.PathPrefix!, request.Capabilities!.Distinct().ToList(), context.User.ActorId(), cancellationToken);
            await audit.AppendAsync(new AuditEvent("secret_policy.create", AuditOutcome.Success)
            {
                Target = $"secret_policy:{created.Id}",
                Details = new Dictionary<string, string>
                {
                    ["principal"] = created.Principal,
                    ["pathPrefix"] = created.PathPrefix,
                    ["capabilities"] = string.Join(",", created.Capabilities),
                },
            }.From(context), cancellationToken);
            return created;
        }, cancellationToken);
        return TypedResults.Created($"/api/v1/secret-policies/{created.Id}", created);
    }

    private static async Task<Results<Ok<IReadOnlyList<PolicyResponse>>, ValidationProblem>> ListAsync(
        string? principal, int? limit, string? after, SecretPolicyStore policies, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (principal is { Length: > 110 })
        {
            errors.Add("principal", "principal is too long.");
        }
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        return TypedResults.Ok(Paging.Page(context, await policies.ListAsync(principal, after, Paging.Take(size), cancellationToken), size, SecretPolicyStore.Cursor));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string id, IDatabase database, SecretPolicyStore policies, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if ((await policies.ListAsync(null, cancellationToken)).FirstOrDefault(p => p.Id == id) is not { } policy)
        {
            return Problems.NotFound("The policy");
        }
        // Revoking a grant one could not have made is refused too: it may be what keeps a service running.
        var missing = (await policies.AccessForAsync(context.User, cancellationToken)).Missing(policy.Capabilities, policy.PathPrefix);
        if (missing.Count > 0)
        {
            return Problems.MissingPermissions($"You cannot revoke a policy that grants what you do not hold: {string.Join(", ", missing)}.", missing);
        }
        var deleted = await database.InUnitOfWorkAsync(async () =>
        {
            if (!await policies.DeleteAsync(id, cancellationToken))
            {
                return false;
            }
            await audit.AppendAsync(new AuditEvent("secret_policy.delete", AuditOutcome.Success) { Target = $"secret_policy:{id}" }.From(context), cancellationToken);
            return true;
        }, cancellationToken);
        return deleted ? TypedResults.NoContent() : Problems.NotFound("The policy");
    }
}
