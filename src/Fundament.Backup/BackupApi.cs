using Fundament.Jobs;

namespace Fundament.Backup;

internal static class BackupApi
{
    public static RouteGroupBuilder MapBackupApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/backups").WithTags("Backup");
        group.MapGet("", ListAsync).RequireAuthorization(BackupPermissions.Read).WithName("ListBackupRuns")
            .WithSummary("The schedule, when the next scheduled backup runs, the last good one, and the recent runs (newest first) with their outcome and verification.");
        group.MapPost("", RequestAsync).RequireAuthorization(BackupPermissions.Write).WithName("RequestBackup")
            .WithSummary("Queues a backup to Fundament:Backup:To now (verified and pruned like a scheduled one); 409 when no destination is configured.");
        return group;
    }

    private static async Task<Results<Ok<BackupRunsResponse>, ValidationProblem>> ListAsync(BackupRuns runs, IOptions<BackupOptions> options, TimeProvider time, int? limit, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, null);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var o = options.Value;
        // The most recent runs (at most the page size): older ones are trimmed to the last 1,000 as new ones start.
        var list = await runs.ListAsync(size, cancellationToken);
        var (lastSuccess, _) = await runs.StatusAsync(cancellationToken);
        DateTimeOffset? next = BackupSchedule.TryParse(o.Schedule, out var schedule) ? schedule!.Next(time.GetUtcNow()) : null;
        // To is a folder or s3://bucket/prefix; the validator refuses anything else, so it carries no credentials.
        return TypedResults.Ok(new BackupRunsResponse(string.IsNullOrWhiteSpace(o.Schedule) ? null : o.Schedule, string.IsNullOrWhiteSpace(o.To) ? null : o.To, o.Retention, next, lastSuccess, list));
    }

    private static async Task<Results<Accepted<BackupRequestedResponse>, ProblemHttpResult>> RequestAsync(
        IJobQueue jobs, IDatabase database, IAuditLog audit, IOptions<BackupOptions> options, HttpContext context, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(options.Value.To))
        {
            return Problems.Conflict("No backup destination is configured (Fundament:Backup:To); take one with `fundament backup --to` instead.");
        }
        var by = context.User.FindFirst("sub")?.Value;
        var job = await database.AuditedAsync(audit,
            () => jobs.EnqueueAsync(new JobRequest(BackupJob.JobType, System.Text.Json.JsonSerializer.Serialize(new BackupJobPayload(null, by, null), System.Text.Json.JsonSerializerOptions.Web), MaxAttempts: 3), cancellationToken),
            id => new AuditEvent("backup.request", AuditOutcome.Success) { Target = $"job:{id}" }.From(context), cancellationToken);
        return TypedResults.Accepted($"/api/v1/jobs/{job}", new BackupRequestedResponse(job));
    }
}

public sealed record BackupRequestedResponse(string JobId);
