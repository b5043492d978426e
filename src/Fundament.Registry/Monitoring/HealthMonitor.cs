using Fundament.Registry.Instances;
using Microsoft.Extensions.Hosting;

namespace Fundament.Registry.Monitoring;

/// <summary>
/// Runs on every control replica. Each pass: TTLs that lapsed turn critical, instances critical
/// longer than their deregisterAfter are removed, and due HTTP checks are claimed (leased, so one
/// replica checks each instance) and run with bounded concurrency without holding up the pass.
/// </summary>
internal sealed partial class HealthMonitor(
    RegistryStore store,
    HttpChecker checker,
    RegistryMetrics metrics,
    TimeProvider time,
    IOptions<RegistryOptions> options,
    ILogger<HealthMonitor> logger) : BackgroundService
{
    private readonly string _owner = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}";
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentChecks);
    private readonly Lock _gate = new();
    private readonly HashSet<Task> _running = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.MonitorInterval, time);
        do
        {
            try
            {
                await PassAsync(waitForChecks: false, stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One pass; with <paramref name="waitForChecks"/> it returns only when the checks it started are done.</summary>
    public async Task PassAsync(bool waitForChecks, CancellationToken cancellationToken)
    {
        await store.ExpireTtlsAsync(cancellationToken);
        var reaped = await store.ReapAsync(cancellationToken);
        if (reaped.Count > 0)
        {
            metrics.Reaped(reaped.Count);
            foreach (var id in reaped)
            {
                LogReaped(logger, id);
            }
        }

        var free = _slots.CurrentCount;
        var started = new List<Task>();
        if (free > 0)
        {
            foreach (var work in await store.ClaimDueChecksAsync(_owner, free, cancellationToken))
            {
                await _slots.WaitAsync(cancellationToken);
                var task = RunCheckAsync(work, cancellationToken);
                started.Add(task);
                lock (_gate)
                {
                    _running.Add(task);
                }
                _ = task.ContinueWith(t => { lock (_gate) { _running.Remove(t); } }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        if (waitForChecks)
        {
            await Task.WhenAll(started);
        }
        metrics.Update(await store.ServicesAsync(cancellationToken));
    }

    private async Task RunCheckAsync(CheckWork work, CancellationToken cancellationToken)
    {
        try
        {
            var (status, output, duration) = await checker.CheckAsync(work, cancellationToken);
            metrics.Check(duration, status);
            await store.CompleteCheckAsync(work.Id, _owner, status, output, CancellationToken.None);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // The lease runs out and the next pass (here or elsewhere) retries the check.
            LogCheckFailed(logger, work.Id, ex);
        }
        finally
        {
            _slots.Release();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        Task[] running;
        lock (_gate)
        {
            running = [.. _running];
        }
        await Task.WhenAll(running).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public override void Dispose()
    {
        _slots.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Registry monitor pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Check of instance {InstanceId} failed to complete")]
    private static partial void LogCheckFailed(ILogger logger, string instanceId, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deregistered instance {InstanceId}: critical longer than its deregisterAfter")]
    private static partial void LogReaped(ILogger logger, string instanceId);
}
