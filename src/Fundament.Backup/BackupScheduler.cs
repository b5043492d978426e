using Microsoft.Extensions.Hosting;
using Fundament.Jobs;

namespace Fundament.Backup;

/// <summary>
/// On control nodes with <c>Fundament:Backup:Schedule</c>: puts the next scheduled backup on the
/// durable job queue (to run at its time), keyed by that time so every control node enqueues the
/// same job once; then refreshes the backup metrics every 30 s.
/// </summary>
internal sealed partial class BackupScheduler(
    IJobQueue jobs,
    BackupMetrics metrics,
    IOptions<BackupOptions> options,
    TimeProvider time,
    ILogger<BackupScheduler> logger) : BackgroundService
{
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(30);

    /// <summary>Enqueues the occurrence after <paramref name="now"/>; returns its time (null without a schedule).</summary>
    public async Task<DateTimeOffset?> EnqueueNextAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (!BackupSchedule.TryParse(options.Value.Schedule, out var schedule) || schedule!.Next(now) is not { } next)
        {
            return null;
        }
        await jobs.EnqueueAsync(new JobRequest(BackupJob.JobType, System.Text.Json.JsonSerializer.Serialize(new BackupJobPayload(null, null, next), System.Text.Json.JsonSerializerOptions.Web),
            IdempotencyKey: $"backup:{next.UtcDateTime:yyyyMMddTHHmmssZ}", MaxAttempts: 5, RunAt: next), cancellationToken);
        return next;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        DateTimeOffset? queued = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var now = time.GetUtcNow();
                if (queued is null || queued <= now)
                {
                    queued = await EnqueueNextAsync(now, stoppingToken);
                }
                await metrics.RefreshAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogFailed(logger, ex);
            }
            try
            {
                await Task.Delay(Refresh, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not schedule the next backup or refresh the backup metrics; trying again in 30 s")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
