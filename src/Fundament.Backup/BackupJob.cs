using Fundament.Core.Storage;
using Fundament.Jobs;

namespace Fundament.Backup;

/// <summary>
/// Job <c>backup.run</c>: takes a backup to <see cref="BackupOptions.To"/>, verifies it in a scratch
/// copy, then deletes the backups beyond <see cref="BackupOptions.Retention"/>. One runs at a time
/// across replicas (lease <c>backup</c>); another waits its turn through the queue's retries.
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
        if (!await leases.TryAcquireAsync(LeaseName, LeaseDuration, cancellationToken))
        {
            throw new InvalidOperationException("another node is taking a backup; this one waits for its turn");
        }
        using var renew = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var renewing = RenewAsync(renew.Token);
        var run = await runs.StartAsync(job.Id, to, request.RequestedBy, cancellationToken);
        BackupResult? result = null;
        bool? verified = null;
        int? pruned = null;
        try
        {
            result = await backups.BackupAsync(to, null, cancellationToken);
            if (options.Value.Verify)
            {
                var scratch = services.GetService<IScratchHostFactory>();
                if (scratch is not null)
                {
                    var report = await backups.VerifyAsync($"{TrimEnd(to)}/{result.Name}", () => null, scratch, cancellationToken);
                    verified = report.Passed;
                    if (!report.Passed)
                    {
                        throw new BackupException("the backup does not verify: " + string.Join("; ", report.Checks.Where(c => !c.Passed).Select(c => $"{c.Name}: {c.Detail}")));
                    }
                }
            }
            // Only after a good backup: a failing one never costs an older good one.
            pruned = (await backups.PruneAsync(to, options.Value.Retention, cancellationToken)).Count;
            await runs.FinishAsync(run, result, verified, pruned, null, CancellationToken.None);
            LogDone(logger, result.Name, to, verified, pruned.Value);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await runs.FinishAsync(run, result, verified, pruned, ex.Message, CancellationToken.None);
            LogFailed(logger, ex, to);
            throw;
        }
        finally
        {
            await renew.CancelAsync();
            await renewing;
            await leases.ReleaseAsync(LeaseName, CancellationToken.None);
            await metrics.RefreshAsync(CancellationToken.None);
        }
    }

    private static string TrimEnd(string location) => location.TrimEnd('/');

    private async Task RenewAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(LeaseDuration / 3, cancellationToken);
                await leases.TryAcquireAsync(LeaseName, LeaseDuration, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Backup {Name} to {To} done (verified: {Verified}); {Pruned} old backups deleted")]
    private static partial void LogDone(ILogger logger, string name, string to, bool? verified, int pruned);

    [LoggerMessage(Level = LogLevel.Error, Message = "Backup to {To} failed")]
    private static partial void LogFailed(ILogger logger, Exception exception, string to);
}

/// <summary>The payload of <c>backup.run</c>: a destination other than the configured one (API), and who asked.</summary>
internal sealed record BackupJobPayload(string? To, string? RequestedBy, DateTimeOffset? ScheduledFor);
