using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Backup;
using Fundament.Jobs;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Fundament.Tests.Backup;

/// <summary>
/// Backups the platform takes itself: queued on the durable job queue for the schedule's next time
/// (once, whichever control node queues it), taken, verified and pruned to the retention by the job,
/// recorded for <c>GET /api/v1/backups</c> and the staleness metric; and asked for through the API.
/// </summary>
public sealed class ScheduledBackupTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly string _to = Path.Combine(Path.GetTempPath(), "fundament-tests", "backups-" + Guid.NewGuid().ToString("N"));
    private readonly ConfiguredFundamentFactory _factory;

    public ScheduledBackupTests()
    {
        _factory = new ConfiguredFundamentFactory(
        [
            new("Fundament:Backup:To", _to),
            new("Fundament:Backup:Schedule", "0 3 * * *"),
            new("Fundament:Backup:Retention", "2"),
            // The tests run the backup job themselves, when they mean to.
            new("Fundament:Jobs:WorkerEnabled", "false"),
        ]);
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        if (Directory.Exists(_to))
        {
            Directory.Delete(_to, recursive: true);
        }
    }

    /// <summary>A complete (or, without backup.json, interrupted) backup folder from long ago.</summary>
    private void OldBackup(string name, bool complete)
    {
        Directory.CreateDirectory(Path.Combine(_to, name, "database"));
        File.WriteAllText(Path.Combine(_to, name, "database", "fundament.db"), "old");
        if (complete)
        {
            File.WriteAllText(Path.Combine(_to, name, "backup.json"), "{}");
        }
    }

    private async Task RunAsync(string jobId)
    {
        using var admin = await _factory.AdminAsync();
        var job = (await admin.GetFromJsonAsync<JsonNode>($"/api/v1/jobs/{jobId}", _ct))!;
        var handler = _factory.Services.GetServices<IJobHandler>().Single(h => h.Type == BackupJob.JobType);
        await handler.HandleAsync(new JobContext(jobId, BackupJob.JobType, (job["payload"] is JsonValue text ? text.GetValue<string>() : job["payload"]!.ToJsonString()), 1, 5, (_, _) => Task.CompletedTask), _ct);
    }

    [Fact]
    public async Task TheNextScheduledBackup_IsQueuedOnce_ForItsTime_AndTheRun_IsVerified_Pruned_Recorded_AndMeasured()
    {
        using var admin = await _factory.AdminAsync();
        Assert.True((await admin.PutAsJsonAsync("/api/v1/secrets/app/db", new { value = new { password = "nightly" } }, _ct)).IsSuccessStatusCode);
        OldBackup("fundament-20200101-030000-aaaa", complete: true);
        OldBackup("fundament-20200102-030000-bbbb", complete: true);
        OldBackup("fundament-20200103-030000-cccc", complete: true);
        OldBackup("fundament-20200104-030000-dddd", complete: false);

        // Every control node queues the same occurrence; the queue keeps one (the fake clock is at 2026-11-23 12:00 UTC).
        var scheduler = _factory.Services.GetRequiredService<BackupScheduler>();
        var next = await scheduler.EnqueueNextAsync(_factory.Time.GetUtcNow(), _ct);
        Assert.Equal(new DateTimeOffset(2026, 11, 24, 3, 0, 0, TimeSpan.Zero), next);
        Assert.Equal(next, await scheduler.EnqueueNextAsync(_factory.Time.GetUtcNow(), _ct));
        var jobs = (await admin.GetFromJsonAsync<JsonNode>($"/api/v1/jobs?type={BackupJob.JobType}", _ct))!.AsArray();
        var job = Assert.Single(jobs)!;
        Assert.Equal("queued", job["state"]!.GetValue<string>());

        var listed = (await admin.GetFromJsonAsync<JsonNode>("/api/v1/backups", _ct))!;
        Assert.Equal("0 3 * * *", listed["schedule"]!.GetValue<string>());
        Assert.Equal(next, listed["nextRun"]!.GetValue<DateTimeOffset>());
        Assert.Null(listed["lastSuccess"]);

        using var lastSuccess = new MetricCollector<double>(_factory.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), "Fundament.Backup", "fundament.backup.last_success_timestamp");
        lastSuccess.RecordObservableInstruments();
        Assert.Equal(0, lastSuccess.LastMeasurement!.Value);

        await RunAsync(job["id"]!.GetValue<string>());

        var run = (await admin.GetFromJsonAsync<JsonNode>("/api/v1/backups", _ct))!["runs"]!.AsArray().Single()!;
        Assert.Equal("succeeded", run["outcome"]!.GetValue<string>());
        Assert.True(run["verified"]!.GetValue<bool>());
        // Two old complete ones beyond the retention of two, and the interrupted one.
        Assert.Equal(3, run["pruned"]!.GetValue<int>());
        var name = run["name"]!.GetValue<string>();
        Assert.Equal([name, "fundament-20200103-030000-cccc"], Directory.GetDirectories(_to).Select(Path.GetFileName).OrderDescending(StringComparer.Ordinal));
        Assert.True(File.Exists(Path.Combine(_to, name, "backup.json")));
        lastSuccess.RecordObservableInstruments();
        Assert.Equal(_factory.Time.GetUtcNow().ToUnixTimeSeconds(), lastSuccess.LastMeasurement!.Value, 0.01);
    }

    [Fact]
    public async Task AFailingRun_IsRecordedAndMeasured_AndPrunesNothing()
    {
        OldBackup("fundament-20200101-030000-aaaa", complete: true);
        OldBackup("fundament-20200102-030000-bbbb", complete: true);
        OldBackup("fundament-20200103-030000-cccc", complete: true);
        using var admin = await _factory.AdminAsync();
        var requested = await admin.PostAsync("/api/v1/backups", null, _ct);
        Assert.Equal(HttpStatusCode.Accepted, requested.StatusCode);
        var jobId = (await requested.Content.ReadFromJsonAsync<JsonNode>(_ct))!["jobId"]!.GetValue<string>();

        // The destination stops being usable: a file where its folder was (the old backups set aside meanwhile).
        Directory.Move(_to, _to + ".aside");
        File.WriteAllText(_to, "not a folder");
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => RunAsync(jobId));
        }
        finally
        {
            File.Delete(_to);
            Directory.Move(_to + ".aside", _to);
        }

        var run = (await admin.GetFromJsonAsync<JsonNode>("/api/v1/backups", _ct))!["runs"]!.AsArray().Single()!;
        Assert.Equal("failed", run["outcome"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(run["error"]!.GetValue<string>()));
        Assert.Equal(3, Directory.GetDirectories(_to).Length);
        using var failed = new MetricCollector<int>(_factory.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), "Fundament.Backup", "fundament.backup.last_run_failed");
        failed.RecordObservableInstruments();
        Assert.Equal(1, failed.LastMeasurement!.Value);
    }

    [Fact]
    public async Task AskingForABackup_NeedsBackupWrite_IsAudited_AndWithoutADestinationIsAConflict()
    {
        var (user, _, _) = await _factory.UserClientAsync("user");
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsync("/api/v1/backups", null, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync("/api/v1/backups", _ct)).StatusCode);

        using var admin = await _factory.AdminAsync();
        var requested = await admin.PostAsync("/api/v1/backups", null, _ct);
        Assert.Equal(HttpStatusCode.Accepted, requested.StatusCode);
        var jobId = (await requested.Content.ReadFromJsonAsync<JsonNode>(_ct))!["jobId"]!.GetValue<string>();
        var audit = (await admin.GetFromJsonAsync<JsonNode>("/api/v1/audit?action=backup.request", _ct))!["items"]!.AsArray();
        Assert.Contains(audit, e => e!["target"]!.GetValue<string>() == $"job:{jobId}");

        await using var nowhere = new ConfiguredFundamentFactory([]);
        using var other = await nowhere.AdminAsync();
        var conflict = await other.PostAsync("/api/v1/backups", null, _ct);
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Contains("Fundament:Backup:To", await conflict.Content.ReadAsStringAsync(_ct), StringComparison.Ordinal);
    }
}
