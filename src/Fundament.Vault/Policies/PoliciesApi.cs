using System.Text.RegularExpressions;
using Fundament.Audit;
using Fundament.Http;
using Fundament.Security;
using Fundament.Vault.Secrets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Fundament.Vault.Policies;

internal static partial class PoliciesApi
{
    public static RouteGroupBuilder MapSecretPoliciesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/secret-policies").WithTags("Vault").RequireAuthorization(VaultPermissions.Policies);
        group.MapPost("", CreateAsync).WithName("CreateSecretPolicy");
        group.MapGet("", ListAsync).WithName("ListSecretPolicies");
        group.MapDelete("/{id}", DeleteAsync).WithName("DeleteSecretPolicy");
        return group;
    }

    [GeneratedRegex("^(client|user|role):[A-Za-z0-9._@-]{1,100}$")]
    private static partial Regex PrincipalPattern();

    private static async Task<Results<Created<PolicyResponse>, ValidationProblem>> CreateAsync(
        CreatePolicyRequest request, PolicyStore policies, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
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
        if (request.Capabilities is not { Count: > 0 } capabilities || capabilities.Any(c => !PolicyStore.Capabilities.Contains(c ?? "")))
        {
            errors.Add("capabilities", "capabilities must list some of: read, write, list, delete.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
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
        return TypedResults.Created($"/api/v1/secret-policies/{created.Id}", created);
    }

    private static async Task<Results<Ok<IReadOnlyList<PolicyResponse>>, ValidationProblem>> ListAsync(string? principal, PolicyStore policies, CancellationToken cancellationToken) =>
        principal is { Length: > 110 }
            ? Problems.Validation("principal", "principal is too long.")
            : TypedResults.Ok(await policies.ListAsync(principal, cancellationToken));

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string id, PolicyStore policies, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (!await policies.DeleteAsync(id, cancellationToken))
        {
            return Problems.NotFound("The policy");
        }
        await audit.AppendAsync(new AuditEvent("secret_policy.delete", AuditOutcome.Success) { Target = $"secret_policy:{id}" }.From(context), cancellationToken);
        return TypedResults.NoContent();
    }
}
