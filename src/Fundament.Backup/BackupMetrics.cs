using System.Diagnostics.Metrics;

namespace Fundament.Backup;

/// <summary>
/// <c>fundament_backup_last_success_timestamp_seconds</c> (0 before the first), <c>fundament_backup_last_run_failed</c>,
/// <c>fundament_backup_scheduled</c> and <c>fundament_backup_stale_after_seconds</c>, read from <c>backup_runs</c> (so every control node reports the cluster's
/// backups) and cached: a scrape never waits for the database. The rules <c>FundamentBackupStale</c> and
/// <c>FundamentBackupFailing</c> use them.
/// </summary>
internal sealed class BackupMetrics
{
    private readonly BackupRuns _runs;
    private double _lastSuccess;
    private int _lastFailed;

    public BackupMetrics(IMeterFactory meters, BackupRuns runs, IOptions<BackupOptions> options)
    {
        _runs = runs;
        var meter = meters.Create("Fundament.Backup");
        meter.CreateObservableGauge("fundament.backup.last_success_timestamp", () => Volatile.Read(ref _lastSuccess), "s",
            "When the last good backup the platform took finished (Unix time); 0 before the first.");
        meter.CreateObservableGauge("fundament.backup.last_run_failed", () => Volatile.Read(ref _lastFailed), null,
            "1 when the last backup run failed (it could not be taken, or did not verify).");
        var scheduled = string.IsNullOrWhiteSpace(options.Value.Schedule) ? 0 : 1;
        meter.CreateObservableGauge("fundament.backup.scheduled", () => scheduled, null,
            "1 when this node schedules backups (Fundament:Backup:Schedule is set).");
        var staleAfter = options.Value.StaleAfter.TotalSeconds;
        meter.CreateObservableGauge("fundament.backup.stale_after", () => staleAfter, "s",
            "Fundament:Backup:StaleAfter: how old the last good backup may be before FundamentBackupStale fires.");
    }

    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var (lastSuccess, lastFailed) = await _runs.StatusAsync(cancellationToken);
        Volatile.Write(ref _lastSuccess, lastSuccess?.ToUnixTimeMilliseconds() / 1000.0 ?? 0);
        Volatile.Write(ref _lastFailed, lastFailed ? 1 : 0);
    }
}
