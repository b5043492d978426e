
namespace Fundament.Jobs;

internal static class JobsApi
{
    public static RouteGroupBuilder MapJobsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/jobs").WithTags("Jobs").RequireAuthorization(JobPermissions.Manage);
        group.MapGet("", ListAsync).WithName("ListJobs").WithSummary("Jobs, newest first; filter by state and type, page with the id of the last job seen (after).");
        group.MapGet("/queues", QueuesAsync).WithName("ListJobQueues").WithSummary("Every job type with its depth, age of the oldest due job and whether it is paused.");
        group.MapPost("/queues/{type}/pause", (string type, IDatabase database, JobStore store, IAuditLog audit, HttpContext context, CancellationToken ct) => PauseAsync(type, true, database, store, audit, context, ct))
            .WithName("PauseJobQueue").WithSummary("Stops workers from starting jobs of this type; running jobs finish.");
        group.MapPost("/queues/{type}/resume", (string type, IDatabase database, JobStore store, IAuditLog audit, HttpContext context, CancellationToken ct) => PauseAsync(type, false, database, store, audit, context, ct))
            .WithName("ResumeJobQueue").WithSummary("Lets workers start jobs of this type again.");
        group.MapGet("/{id}", GetAsync).WithName("GetJob").WithSummary("One job with its payload, attempts, progress and last error.");
        group.MapPost("/{id}/retry", RetryAsync).WithName("RetryJob").WithSummary("Gives a dead or cancelled job a fresh set of attempts.");
        group.MapPost("/{id}/cancel", CancelAsync).WithName("CancelJob").WithSummary("Cancels a queued job; asks a running one to stop.");
        return group;
    }

    private static async Task<Results<Ok<IReadOnlyList<JobResponse>>, ValidationProblem>> ListAsync(
        string? state, string? type, string? after, int? limit, JobStore store, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (state is not null && !JobState.All.Contains(state))
        {
            errors.Add("state", $"state must be one of {string.Join(", ", JobState.All)}.");
        }
        if (limit is < 1 or > 500)
        {
            errors.Add("limit", "limit must be between 1 and 500.");
        }
        errors.MaxLength("type", type, 200).MaxLength("after", after, 100);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        return TypedResults.Ok(await store.ListAsync(state, type, after, limit ?? 100, cancellationToken));
    }

    private static async Task<Ok<IReadOnlyList<JobQueueResponse>>> QueuesAsync(JobStore store, IOptions<JobsOptions> options, CancellationToken cancellationToken)
    {
        var snapshot = (await store.SnapshotAsync(cancellationToken)).ToDictionary(s => s.Type, StringComparer.Ordinal);
        var paused = await store.PausedAsync(cancellationToken);
        var types = snapshot.Keys.Union(paused).Union(options.Value.Queues.Keys).Order(StringComparer.Ordinal);
        return TypedResults.Ok<IReadOnlyList<JobQueueResponse>>(types.Select(t =>
        {
            var s = snapshot.GetValueOrDefault(t);
            return new JobQueueResponse(t, paused.Contains(t), options.Value.ConcurrencyOf(t), s?.Queued ?? 0, s?.Running ?? 0, s?.Dead ?? 0, s?.OldestQueuedSeconds ?? 0);
        }).ToList());
    }

    private static async Task<Results<NoContent, ValidationProblem>> PauseAsync(
        string type, bool paused, IDatabase database, JobStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (type.Length > 200)
        {
            return Problems.Validation("type", "type must be at most 200 characters.");
        }
        await database.AuditedAsync(audit, async () =>
            {
                await store.SetPausedAsync(type, paused, cancellationToken);
                return true;
            },
            _ => new AuditEvent(paused ? "jobs.queue.pause" : "jobs.queue.resume", AuditOutcome.Success) { Target = $"queue:{type}" }.From(context), cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<JobResponse>, ProblemHttpResult>> GetAsync(string id, JobStore store, CancellationToken cancellationToken) =>
        await store.GetAsync(id, cancellationToken) is { } job ? TypedResults.Ok(job) : Problems.NotFound("The job");

    private static async Task<Results<Ok<JobResponse>, ProblemHttpResult>> RetryAsync(
        string id, IDatabase database, JobStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(id, cancellationToken) is null)
        {
            return Problems.NotFound("The job");
        }
        if (!await database.AuditedAsync(audit, () => store.RetryAsync(id, cancellationToken),
                retried => retried ? new AuditEvent("jobs.retry", AuditOutcome.Success) { Target = $"job:{id}" }.From(context) : null, cancellationToken))
        {
            return Problems.Conflict("Only a dead or cancelled job can be retried.");
        }
        return TypedResults.Ok((await store.GetAsync(id, cancellationToken))!);
    }

    private static async Task<Results<Ok<JobResponse>, ProblemHttpResult>> CancelAsync(
        string id, IDatabase database, JobStore store, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        var before = await store.GetAsync(id, cancellationToken);
        if (before is null)
        {
            return Problems.NotFound("The job");
        }
        if (before.State is not (JobState.Queued or JobState.Running))
        {
            return Problems.Conflict($"The job is {before.State}; only a queued or running job can be cancelled.");
        }
        await database.AuditedAsync(audit, async () =>
            {
                await store.CancelAsync(id, cancellationToken);
                return true;
            },
            _ => new AuditEvent("jobs.cancel", AuditOutcome.Success) { Target = $"job:{id}" }.From(context), cancellationToken);
        return TypedResults.Ok((await store.GetAsync(id, cancellationToken))!);
    }
}
