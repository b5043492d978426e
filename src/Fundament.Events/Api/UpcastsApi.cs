using Fundament.Events.Storage;
using Fundament.Events.Upcasting;

namespace Fundament.Events.Api;

/// <summary>
/// <c>/api/v1/event-types/{type}/upcasts</c>: declarative upcasts per event type, applied on every
/// read, and a dry run that runs proposed upcasts over the stored history before they are saved.
/// Upcasts change what every reader of the type sees, across tenants, so every call needs
/// events.admin (the steps show other tenants' data shapes; the dry run reads every stream).
/// </summary>
internal static class UpcastsApi
{
    public static RouteGroupBuilder MapUpcastsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/event-types/{type}/upcasts").WithTags("Event store").RequireAuthorization(Policies.Authenticated);
        group.MapGet("", GetAsync).WithName("GetUpcasts").RequireAuthorization(EventsPermissions.Admin)
            .WithSummary("The type's upcasts and the schema version its events are read at.");
        group.MapPut("", SaveAsync).WithName("SaveUpcasts").RequireAuthorization(EventsPermissions.Admin)
            .WithSummary("Sets the type's upcasts (one step per schema version from 1), applied on every read from now on; run the dry run first.");
        group.MapDelete("", DeleteAsync).WithName("DeleteUpcasts").RequireAuthorization(EventsPermissions.Admin)
            .WithSummary("Removes the type's upcasts: events are read as stored.");
        group.MapPost("/dry-run", DryRunAsync).WithName("DryRunUpcasts").RequireAuthorization(EventsPermissions.Admin)
            .WithSummary("Runs proposed upcasts over the type's stored events, oldest first, and reports every event they fail on; changes nothing.");
        return group;
    }

    internal sealed record Services(UpcastStore Upcasts, EventStore Events, IDatabase Database, IAuditLog Audit, IOptions<EventsOptions> Options);

    private static ValidationErrors Validate(string type, UpcastsRequest request, EventsOptions options)
    {
        var errors = new ValidationErrors();
        if (!StreamsApi.IsName(type))
        {
            errors.Add("type", "type is 1-128 characters of letters, digits, '.', '_', ':' and '-'.");
        }
        UpcastChain.Validate(request.Steps, options.MaxUpcastSteps, errors);
        return errors;
    }

    private static async Task<Results<Ok<EventTypeUpcasts>, ProblemHttpResult>> GetAsync(string type, [AsParameters] Services s, CancellationToken cancellationToken) =>
        await s.Upcasts.GetAsync(type, cancellationToken) is { } upcasts ? TypedResults.Ok(upcasts) : Problems.NotFound("Upcasts for the type");

    private static async Task<Results<Ok<EventTypeUpcasts>, ValidationProblem>> SaveAsync(
        string type, UpcastsRequest request, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = Validate(type, request, s.Options.Value);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var saved = await s.Database.AuditedAsync(s.Audit, () => s.Upcasts.SaveAsync(type, request.Steps!, context.User.ActorId(), cancellationToken),
            u => new AuditEvent("events.upcasts.save", AuditOutcome.Success)
            {
                Target = $"event-type:{type}",
                Details = new Dictionary<string, string> { ["currentVersion"] = u.CurrentVersion.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            }.From(context), cancellationToken);
        return TypedResults.Ok(saved);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string type, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken) =>
        await s.Database.AuditedAsync(s.Audit, () => s.Upcasts.DeleteAsync(type, cancellationToken),
            deleted => deleted ? new AuditEvent("events.upcasts.delete", AuditOutcome.Success) { Target = $"event-type:{type}" }.From(context) : null, cancellationToken)
            ? TypedResults.NoContent()
            : Problems.NotFound("Upcasts for the type");

    private static async Task<Results<Ok<UpcastDryRun>, ValidationProblem>> DryRunAsync(
        string type, UpcastsRequest request, [AsParameters] Services s, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        var errors = Validate(type, request, options);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var chain = new UpcastChain(request.Steps!);
        var failures = new List<UpcastFailure>();
        long checkedCount = 0, upcast = 0, failed = 0, after = 0;
        var complete = true;
        while (true)
        {
            var take = (int)Math.Min(options.MaxReadCount, options.MaxDryRunEvents - checkedCount);
            if (take <= 0)
            {
                // Complete only if nothing of the type lies beyond the limit.
                complete = (await s.Events.ReadAllAsync(after, null, type, 1, cancellationToken)).Count == 0;
                break;
            }
            var page = await s.Events.ReadAllAsync(after, null, type, take, cancellationToken);
            foreach (var e in page)
            {
                checkedCount++;
                if (e.SchemaVersion >= chain.CurrentVersion)
                {
                    continue;
                }
                try
                {
                    EventUpcaster.Upcast(e.Data, e.SchemaVersion, chain);
                    upcast++;
                }
                catch (Exception failure) when (failure is not OperationCanceledException)
                {
                    failed++;
                    if (failures.Count < 100)
                    {
                        failures.Add(new UpcastFailure(e.Id, e.Stream, e.Version, e.Position, e.SchemaVersion, failure.Message));
                    }
                }
            }
            if (page.Count < take)
            {
                break;
            }
            after = page[^1].Position;
        }
        return TypedResults.Ok(new UpcastDryRun(type, chain.CurrentVersion, checkedCount, upcast, failed, complete, failures));
    }
}
