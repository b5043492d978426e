using Fundament.Events.Storage;

namespace Fundament.Events.Api;

/// <summary>
/// <c>/api/v1/streams/{stream}/snapshot</c>: a stream's latest snapshot. Saving one needs append on
/// the stream, reading it read; a read of the stream with <c>fromSnapshot=true</c> starts there.
/// </summary>
internal static class SnapshotsApi
{
    public static RouteGroupBuilder MapSnapshotsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/streams").WithTags("Event store").RequireAuthorization(Policies.Authenticated);
        group.MapPut("/{stream}/snapshot", SaveAsync).WithName("SaveSnapshot")
            .WithSummary("Saves the stream's state as of a version it has reached (needs append); it replaces the previous snapshot and must not be older than it.");
        group.MapGet("/{stream}/snapshot", GetAsync).WithName("GetSnapshot")
            .WithSummary("The stream's latest snapshot (needs read).");
        return group;
    }

    internal sealed record Services(SnapshotStore Snapshots, StreamGrantStore Grants, IDatabase Database, IAuditLog Audit, Core.Quotas.IQuotas Quotas, IOptions<EventsOptions> Options);

    private static async Task<Results<Ok<Snapshot>, ValidationProblem, ProblemHttpResult>> SaveAsync(
        string stream, SnapshotRequest request, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (!StreamsApi.IsStream(stream))
        {
            errors.Add("stream", StreamsApi.StreamRule);
        }
        if (request.Version is not >= 0)
        {
            errors.Add("version", "version is the stream version the state reflects (0 or more).");
        }
        var data = request.Data is { ValueKind: not System.Text.Json.JsonValueKind.Undefined } d ? d.GetRawText() : null;
        if (data is null)
        {
            errors.Add("data", "data is required (any JSON value).");
        }
        else if (System.Text.Encoding.UTF8.GetByteCount(data) > s.Options.Value.MaxSnapshotBytes)
        {
            errors.Add("data", $"data must be at most {s.Options.Value.MaxSnapshotBytes} bytes of JSON.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        if (!access.Allows(StreamGrantStore.Append, stream))
        {
            await s.Audit.AppendAsync(new AuditEvent("events.snapshot", AuditOutcome.Denied) { Target = $"stream:{stream}" }.From(context), cancellationToken);
            return Problems.Forbidden($"No grant lets the caller append to stream '{stream}'.");
        }
        var subject = Core.Quotas.QuotaSubject.Of(context.User);
        // A snapshot's bytes count against the writer's storedBytes, checked in its transaction.
        var (refusal, version, saved) = await s.Database.AuditedAsync(s.Audit,
            () => s.Snapshots.SaveAsync(stream, request.Version!.Value, data!, context.User.ActorId(),
                adding => adding > 0 ? s.Quotas.EnsureAsync(subject, Core.Quotas.Quota.StoredBytes, adding, cancellationToken) : Task.CompletedTask, cancellationToken),
            r => r.Saved is { } snapshot
                ? new AuditEvent("events.snapshot", AuditOutcome.Success)
                {
                    Target = $"stream:{stream}",
                    Details = new Dictionary<string, string> { ["version"] = snapshot.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                }.From(context)
                : null, cancellationToken);
        return refusal switch
        {
            SnapshotRefusal.None => TypedResults.Ok(saved!),
            SnapshotRefusal.NoStream => Problems.NotFound("The stream"),
            SnapshotRefusal.BeyondStream => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Version beyond the stream",
                detail: $"Stream '{stream}' is at version {version}; a snapshot reflects a version it has reached.",
                extensions: new Dictionary<string, object?> { ["actualVersion"] = version }),
            _ => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "A newer snapshot exists",
                detail: $"Stream '{stream}' has a snapshot at version {version}; snapshots only move forward.",
                extensions: new Dictionary<string, object?> { ["snapshotVersion"] = version }),
        };
    }

    private static async Task<Results<Ok<Snapshot>, ValidationProblem, ProblemHttpResult>> GetAsync(
        string stream, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        if (!StreamsApi.IsStream(stream))
        {
            return Problems.Validation("stream", StreamsApi.StreamRule);
        }
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        if (!access.Allows(StreamGrantStore.Read, stream))
        {
            await s.Audit.AppendAsync(new AuditEvent("events.read", AuditOutcome.Denied) { Target = $"stream:{stream}" }.From(context), cancellationToken);
            return Problems.Forbidden($"No grant lets the caller read stream '{stream}'.");
        }
        return await s.Snapshots.GetAsync(stream, cancellationToken) is { } snapshot ? TypedResults.Ok(snapshot) : Problems.NotFound("The snapshot");
    }
}
