namespace Fundament.Audit;

internal static class AuditApi
{
    public static RouteGroupBuilder MapAuditApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/audit").WithTags("Audit").RequireAuthorization(AuditPermissions.Read);
        group.MapGet("", ListAsync).WithName("ListAuditEntries")
            .WithSummary("Audit entries, newest first, filtered by actor, action (a trailing '.' matches a prefix), target, outcome and time.");
        group.MapGet("/verify", VerifyAsync).WithName("VerifyAuditChain")
            .WithSummary("Recomputes the whole chain; valid is false when any entry was altered, removed or reordered.");
        return group;
    }

    private static async Task<Results<Ok<AuditPage>, ValidationProblem>> ListAsync(
        AuditLog log,
        string? actor,
        string? action,
        string? target,
        string? outcome,
        DateTimeOffset? from,
        DateTimeOffset? to,
        long? before,
        int? limit,
        CancellationToken cancellationToken)
    {
        var pageSize = limit ?? 50;
        if (pageSize is < 1 or > 500)
        {
            return Problems.Validation("limit", "limit must be between 1 and 500.");
        }
        if (before is < 1)
        {
            return Problems.Validation("before", "before must be a positive sequence number.");
        }
        if (from is { } f && to is { } t && f > t)
        {
            return Problems.Validation("from", "from must not be after to.");
        }
        return TypedResults.Ok(await log.QueryAsync(new AuditQuery(actor, action, target, outcome, from, to, before, pageSize), cancellationToken));
    }

    private static async Task<Ok<AuditVerification>> VerifyAsync(AuditLog log, CancellationToken cancellationToken) =>
        TypedResults.Ok(await log.VerifyAsync(cancellationToken));
}
