using Fundament.Events.Storage;

namespace Fundament.Events.Api;

/// <summary><c>/api/v1/stream-grants</c>: who may read or append on which stream prefix (events.admin).</summary>
internal static class StreamGrantsApi
{
    public static RouteGroupBuilder MapStreamGrantsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/stream-grants").WithTags("Event store").RequireAuthorization(EventsPermissions.Admin);
        group.MapGet("", ListAsync).WithName("ListStreamGrants")
            .WithSummary("Stream grants by id, a page at a time (limit 1-500, after: the cursor in the Link rel=next header); filter by principal.");
        group.MapPost("", CreateAsync).WithName("CreateStreamGrant")
            .WithSummary("Lets a principal (user:<id>, client:<id> or role:<name>) read and/or append on every stream starting with a prefix.");
        group.MapDelete("/{id}", DeleteAsync).WithName("DeleteStreamGrant").WithSummary("Removes a stream grant.");
        return group;
    }

    private static async Task<Results<Ok<IReadOnlyList<StreamGrant>>, ValidationProblem>> ListAsync(
        string? principal, int? limit, string? after, StreamGrantStore grants, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().MaxLength("principal", principal, 200);
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var page = (await grants.ListAsync(principal, after, Paging.Take(size), cancellationToken)).Select(ToStreamGrant).ToList();
        return TypedResults.Ok(Paging.Page(context, page, size, g => g.Id));
    }

    private static async Task<Results<Created<StreamGrant>, ValidationProblem>> CreateAsync(
        StreamGrantRequest request, StreamGrantStore grants, IDatabase database, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (!PrefixGrantStore.IsPrincipal(request.Principal))
        {
            errors.Add("principal", "principal is user:<id>, client:<id> or role:<name>.");
        }
        // An empty prefix grants every stream; it must be said explicitly, never by leaving the field out.
        if (request.StreamPrefix is null || (request.StreamPrefix.Length > 0 && !StreamsApi.IsStreamPrefix(request.StreamPrefix)))
        {
            errors.Add("streamPrefix", "streamPrefix is required: up to 200 characters of letters, digits, '.', '_', ':' and '-' (\"\" for every stream).");
        }
        if (request.Capabilities is not { Count: > 0 } capabilities || capabilities.Any(c => !StreamGrantStore.Capabilities.Contains(c)))
        {
            errors.Add("capabilities", "capabilities lists read and/or append.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var grant = ToStreamGrant(await database.AuditedAsync(audit,
            () => grants.CreateAsync(request.Principal!, request.StreamPrefix!, request.Capabilities!.Distinct().ToList(), context.User.ActorId(), cancellationToken),
            g => new AuditEvent("events.grant.create", AuditOutcome.Success)
            {
                Target = $"stream-grant:{g.Id}",
                Details = new Dictionary<string, string> { ["principal"] = g.Principal, ["streamPrefix"] = g.Prefix, ["capabilities"] = string.Join(",", g.Capabilities) },
            }.From(context), cancellationToken));
        return TypedResults.Created($"/api/v1/stream-grants/{grant.Id}", grant);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string id, StreamGrantStore grants, IDatabase database, IAuditLog audit, HttpContext context, CancellationToken cancellationToken) =>
        await database.AuditedAsync(audit, () => grants.DeleteAsync(id, cancellationToken),
            deleted => deleted ? new AuditEvent("events.grant.delete", AuditOutcome.Success) { Target = $"stream-grant:{id}" }.From(context) : null, cancellationToken)
            ? TypedResults.NoContent()
            : Problems.NotFound("The stream grant");

    private static StreamGrant ToStreamGrant(PrefixGrant g) => new(g.Id, g.Principal, g.Prefix, g.Capabilities, g.CreatedAt, g.CreatedBy);
}
