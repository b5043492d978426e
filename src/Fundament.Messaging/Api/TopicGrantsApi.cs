using Fundament.Messaging.Storage;

namespace Fundament.Messaging.Api;

/// <summary><c>/api/v1/topic-grants</c>: who may publish and/or consume on which topic prefix (messaging.admin).</summary>
internal static class TopicGrantsApi
{
    public static RouteGroupBuilder MapTopicGrantsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/topic-grants").WithTags("Messaging").RequireAuthorization(MessagingPermissions.Admin);
        group.MapGet("", ListAsync).WithName("ListTopicGrants")
            .WithSummary("Topic grants by id, a page at a time (limit 1-500, after: the cursor in the Link rel=next header); filter by principal.");
        group.MapPost("", CreateAsync).WithName("CreateTopicGrant")
            .WithSummary("Lets a principal (user:<id>, client:<id> or role:<name>) publish and/or consume on every topic starting with a prefix.");
        group.MapDelete("/{id}", DeleteAsync).WithName("DeleteTopicGrant").WithSummary("Removes a topic grant.");
        return group;
    }

    private static async Task<Results<Ok<IReadOnlyList<TopicGrant>>, ValidationProblem>> ListAsync(
        string? principal, int? limit, string? after, TopicGrantStore grants, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().MaxLength("principal", principal, 200);
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var page = (await grants.ListAsync(principal, after, Paging.Take(size), cancellationToken)).Select(ToTopicGrant).ToList();
        return TypedResults.Ok(Paging.Page(context, page, size, g => g.Id));
    }

    private static async Task<Results<Created<TopicGrant>, ValidationProblem>> CreateAsync(
        TopicGrantRequest request, TopicGrantStore grants, IDatabase database, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (!PrefixGrantStore.IsPrincipal(request.Principal))
        {
            errors.Add("principal", "principal is user:<id>, client:<id> or role:<name>.");
        }
        // An empty prefix grants every topic; it must be said explicitly, never by leaving the field out.
        if (request.TopicPrefix is null || !MessagingAccess.IsTopicPrefix(request.TopicPrefix))
        {
            errors.Add("topicPrefix", "topicPrefix is required: up to 200 characters of letters, digits, '.', '_', ':' and '-' (\"\" for every topic).");
        }
        if (request.Capabilities is not { Count: > 0 } capabilities || capabilities.Any(c => !TopicGrantStore.Capabilities.Contains(c)))
        {
            errors.Add("capabilities", "capabilities lists publish and/or consume.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var grant = ToTopicGrant(await database.AuditedAsync(audit,
            () => grants.CreateAsync(request.Principal!, request.TopicPrefix!, request.Capabilities!.Distinct().ToList(), context.User.ActorId(), cancellationToken),
            g => new AuditEvent("messaging.grant.create", AuditOutcome.Success)
            {
                Target = $"topic-grant:{g.Id}",
                Details = new Dictionary<string, string> { ["principal"] = g.Principal, ["topicPrefix"] = g.Prefix, ["capabilities"] = string.Join(",", g.Capabilities) },
            }.From(context), cancellationToken));
        return TypedResults.Created($"/api/v1/topic-grants/{grant.Id}", grant);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string id, TopicGrantStore grants, IDatabase database, IAuditLog audit, HttpContext context, CancellationToken cancellationToken) =>
        await database.AuditedAsync(audit, () => grants.DeleteAsync(id, cancellationToken),
            deleted => deleted ? new AuditEvent("messaging.grant.delete", AuditOutcome.Success) { Target = $"topic-grant:{id}" }.From(context) : null, cancellationToken)
            ? TypedResults.NoContent()
            : Problems.NotFound("The topic grant");

    private static TopicGrant ToTopicGrant(PrefixGrant g) => new(g.Id, g.Principal, g.Prefix, g.Capabilities, g.CreatedAt, g.CreatedBy);
}
