
namespace Fundament.Delivery;

internal static class DeliveryApi
{
    public static RouteGroupBuilder MapDeliveryApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/deliveries").WithTags("Deliveries").RequireAuthorization(DeliveryPermissions.Manage);
        group.MapGet("", ListAsync).WithName("ListDeliveries").WithSummary("Outbound deliveries, newest first; filter by state and source.");
        group.MapGet("/{id}", GetAsync).WithName("GetDelivery").WithSummary("A delivery with every attempt.");
        group.MapPost("/{id}/retry", RetryAsync).WithName("RetryDelivery").WithSummary("Gives a dead delivery a fresh set of attempts.");
        return group;
    }

    private static async Task<Results<Ok<IReadOnlyList<DeliveryResponse>>, ValidationProblem>> ListAsync(
        string? state, string? source, int? limit, DeliveryStore store, CancellationToken cancellationToken)
    {
        if (state is not (null or DeliveryState.Pending or DeliveryState.Delivered or DeliveryState.Dead))
        {
            return Problems.Validation("state", "state must be pending, delivered or dead.");
        }
        if (limit is < 1 or > 500 || source is { Length: > 200 })
        {
            return Problems.Validation("limit", "limit must be 1-500 and source at most 200 characters.");
        }
        return TypedResults.Ok(await store.ListAsync(state, source, limit ?? 100, cancellationToken));
    }

    private static async Task<Results<Ok<DeliveryDetail>, ProblemHttpResult>> GetAsync(string id, DeliveryStore store, CancellationToken cancellationToken) =>
        await store.GetAsync(id, cancellationToken) is { } found
            ? TypedResults.Ok(new DeliveryDetail(found.Item, found.Attempts))
            : Problems.NotFound("The delivery");

    private static async Task<Results<NoContent, ProblemHttpResult>> RetryAsync(
        string id, IDatabase database, DeliveryStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (!await database.AuditedAsync(audit, () => store.RetryAsync(id, cancellationToken),
                retried => retried ? new AuditEvent("delivery.retry", AuditOutcome.Success) { Target = $"delivery:{id}" }.From(context) : null, cancellationToken))
        {
            return Problems.Conflict("Only a dead delivery can be retried.");
        }
        return TypedResults.NoContent();
    }
}

public sealed record DeliveryDetail(DeliveryResponse Delivery, IReadOnlyList<DeliveryAttempt> Attempts);
