using Fundament.Core.Storage;
using Fundament.Jobs;

namespace Fundament.Backup;

/// <summary>
/// Job <c>backup.run</c>: takes a backup to <see cref="BackupOptions.To"/>, verifies it in a scratch
/// copy, then deletes the backups beyond <see cref="BackupOptions.Retention"/>. One runs at a time
/// across replicas and on each node (lease <c>backup</c>, held under an owner of this run alone);
/// another waits its turn through the queue's retries. A backup that does not verify is deleted, so it
/// never counts as a good one nor towards the retention.
/// </summary>
internal sealed partial class BackupJob(
    BackupService backups,
    BackupRuns runs,
    BackupMetrics metrics,
    LeaseStore leases,
    IOptions<BackupOptions> options,
    IServiceProvider services,
    ILogger<BackupJob> logger) : IJobHandler
{
    public const string JobType = "backup.run";
    public const string LeaseName = "backup";
    private static readonly TimeSpan LeaseDuration = TimeSpan.FromMinutes(5);

    public string Type => JobType;

    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var request = job.Read<BackupJobPayload>();
        var to = request.To ?? options.Value.To ?? throw new PermanentJobException("Fundament:Backup:To is not set: there is nowhere to put the backup.");
        var owner = leases.NewLockOwner();
        if (!await leases.TryAcquireAsync(LeaseName, owner, LeaseDuration, cancellationToken))
        {
            throw new InvalidOperationException("another backup is running; this one waits for its turn");
        }
        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task? renewing = null;
        string? runId = null;
        BackupResult? result = null;
        bool? verified = null;
        int? pruned = null;
        var scratch = options.Value.Verify ? services.GetService<IScratchHostFactory>() : null;
        try
        {
            renewing = RenewAsync(owner, run);
            runId = await runs.StartAsync(job.Id, to, request.RequestedBy, run.Token);
            result = await backups.BackupAsync(to, null, run.Token);
            if (scratch is not null)
            {
                var report = await backups.VerifyAsync($"{to.TrimEnd('/')}/{result.Name}", () => null, scratch, run.Token);
                verified = report.Passed;
                if (!report.Passed)
                {
                    throw new BackupException("the backup does not verify: " + string.Join("; ", report.Checks.Where(c => !c.Passed).Select(c => $"{c.Name}: {c.Detail}")));
                }
            }
            // Only after a good backup: a failing one never costs an older good one.
            pruned = (await backups.PruneAsync(to, options.Value.Retention, run.Token)).Count;
            await runs.FinishAsync(runId, result, verified, pruned, null, CancellationToken.None);
            LogDone(logger, result.Name, to, verified, pruned.Value);
        }
        catch (Exception ex)
        {
            var reason = ex is OperationCanceledException
                ? run.IsCancellationRequested && !cancellationToken.IsCancellationRequested ? "cancelled: the backup lease was lost" : "cancelled"
                : ex.Message;
            if (result is not null && scratch is not null && verified != true)
            {
                // Taken but not verified: it must not count as a good backup, in restore's "newest" or in the retention.
                await Quietly(() => backups.DeleteAsync(to, result.Name, CancellationToken.None));
            }
            if (runId is not null)
            {
                await Quietly(() => runs.FinishAsync(runId, result, verified, pruned, reason, CancellationToken.None));
            }
            LogFailed(logger, ex, to);
            throw;
        }
        finally
        {
            await run.CancelAsync();
            if (renewing is not null)
            {
                await renewing;
            }
            await Quietly(() => leases.ReleaseAsync(LeaseName, owner, CancellationToken.None));
            await Quietly(() => metrics.RefreshAsync(CancellationToken.None));
        }
    }

    /// <summary>Renews the lease while the run goes on; if it cannot, the run stops (another node may take a backup now).</summary>
    private async Task RenewAsync(string owner, CancellationTokenSource run)
    {
        while (!run.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(LeaseDuration / 3, run.Token);
                if (!await leases.TryAcquireAsync(LeaseName, owner, LeaseDuration, run.Token))
                {
                    await run.CancelAsync();
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex)
            {
                // A blip: try again at the next turn, well before the lease runs out.
                LogRenewFailed(logger, ex);
            }
        }
    }

    private async Task Quietly(Func<Task> step)
    {
        try
        {
            await step();
        }
        catch (Exception ex)
        {
            LogCleanupFailed(logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Backup {Name} to {To} done (verified: {Verified}); {Pruned} old backups deleted")]
    private static partial void LogDone(ILogger logger, string name, string to, bool? verified, int pruned);

    [LoggerMessage(Level = LogLevel.Error, Message = "Backup to {To} failed")]
    private static partial void LogFailed(ILogger logger, Exception exception, string to);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Renewing the backup lease failed")]
    private static partial void LogRenewFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A step after a backup run failed")]
    private static partial void LogCleanupFailed(ILogger logger, Exception exception);
}

/// <summary>The payload of <c>backup.run</c>: a destination other than the configured one, who asked, and for which scheduled time.</summary>
internal sealed record BackupJobPayload(string? To, string? RequestedBy, DateTimeOffset? ScheduledFor);
