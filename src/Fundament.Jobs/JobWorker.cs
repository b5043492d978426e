using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;

namespace Fundament.Jobs;

/// <summary>
/// Runs the job handlers this process has. Each job type has its own slots
/// (<see cref="JobsOptions.ConcurrencyOf"/>); a pass claims as many due jobs as there are free
/// slots, skipping paused queues, and runs each with a lease it renews until the handler returns.
/// A pass also puts back jobs whose worker died and deletes old finished jobs.
/// </summary>
internal sealed partial class JobWorker : BackgroundService
{
    private readonly JobStore _store;
    private readonly Dictionary<string, IJobHandler> _handlers;
    private readonly Dictionary<string, SemaphoreSlim> _slots;
    private readonly TimeProvider _time;
    private readonly IOptions<JobsOptions> _options;
    private readonly ILogger<JobWorker> _logger;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly HashSet<Task> _running = [];
    private readonly Lock _runningGate = new();
    private readonly Counter<long> _finished;
    private readonly Histogram<double> _duration;
    private IReadOnlyList<QueueSnapshot> _snapshot = [];
    private long _lastHousekeeping;

    public JobWorker(JobStore store, IEnumerable<IJobHandler> handlers, TimeProvider time, IOptions<JobsOptions> options, IMeterFactory meters, ILogger<JobWorker> logger)
    {
        _store = store;
        _handlers = handlers.ToDictionary(h => h.Type, StringComparer.Ordinal);
        _slots = _handlers.Keys.ToDictionary(t => t, t => new SemaphoreSlim(options.Value.ConcurrencyOf(t)), StringComparer.Ordinal);
        _time = time;
        _options = options;
        _logger = logger;
        Owner = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}";
        var meter = meters.Create("Fundament.Jobs");
        _finished = meter.CreateCounter<long>("fundament.jobs.finished", "{job}", "Job attempts that ended, by type and outcome (succeeded, retry, dead, cancelled).");
        _duration = meter.CreateHistogram<double>("fundament.jobs.duration", "s", "How long one attempt of a job ran, by type.");
        meter.CreateObservableGauge("fundament.jobs.depth", () => _snapshot.SelectMany(s => new[]
        {
            new Measurement<long>(s.Queued, new("type", s.Type), new("state", JobState.Queued)),
            new Measurement<long>(s.Running, new("type", s.Type), new("state", JobState.Running)),
            new Measurement<long>(s.Dead, new("type", s.Type), new("state", JobState.Dead)),
        }), "{job}", "Jobs per type and state (queued, running, dead), as of the worker's last pass.");
        meter.CreateObservableGauge("fundament.jobs.oldest_queued_age", () => _snapshot.Select(s =>
            new Measurement<double>(s.OldestQueuedSeconds, new KeyValuePair<string, object?>("type", s.Type))), "s", "Age of the oldest due job waiting per type.");
        _store.Enqueued += type =>
        {
            if (_handlers.ContainsKey(type))
            {
                Wake();
            }
        };
    }

    /// <summary>Lease owner name of this worker.</summary>
    public string Owner { get; }

    public IReadOnlyCollection<string> Types => _handlers.Keys;

    public void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already awake.
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_handlers.Count == 0)
        {
            return;
        }
        LogStarted(_logger, string.Join(", ", _handlers.Keys.Order()));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PassAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(_logger, ex);
            }
            try
            {
                // Real time on purpose: the poll is about the machine, not the (possibly fake) clock jobs are scheduled by.
                await _wake.WaitAsync(_options.Value.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        Task[] left;
        lock (_runningGate)
        {
            left = [.. _running];
        }
        // Handlers see the stopping token; whatever they do not finish stays leased and is picked up again after the lease.
        await Task.WhenAll(left).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    /// <summary>One pass: recovers expired leases, then starts due jobs in the free slots. Returns the jobs started.</summary>
    public async Task<int> PassAsync(CancellationToken stoppingToken)
    {
        await _store.RecoverExpiredAsync(stoppingToken);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        if (now - _lastHousekeeping > 60_000)
        {
            _lastHousekeeping = now;
            await _store.PurgeFinishedAsync(stoppingToken);
        }
        _snapshot = await _store.SnapshotAsync(stoppingToken);
        var paused = await _store.PausedAsync(stoppingToken);
        var started = 0;
        foreach (var (type, handler) in _handlers)
        {
            if (paused.Contains(type))
            {
                continue;
            }
            var slots = _slots[type];
            var free = slots.CurrentCount;
            if (free == 0)
            {
                continue;
            }
            var jobs = await _store.ClaimAsync(type, Owner, free, stoppingToken);
            foreach (var job in jobs)
            {
                await slots.WaitAsync(stoppingToken);
                var task = RunAsync(handler, job, slots, stoppingToken);
                lock (_runningGate)
                {
                    _running.Add(task);
                }
                _ = task.ContinueWith(t =>
                {
                    lock (_runningGate)
                    {
                        _running.Remove(t);
                    }
                }, TaskScheduler.Default);
                started++;
            }
        }
        return started;
    }

    /// <summary>Waits until every job this worker started has finished (tests and shutdown).</summary>
    public Task IdleAsync()
    {
        lock (_runningGate)
        {
            return Task.WhenAll(_running.ToArray());
        }
    }

    private async Task RunAsync(IJobHandler handler, JobRow job, SemaphoreSlim slots, CancellationToken stoppingToken)
    {
        await Task.Yield();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        using var heartbeat = new CancellationTokenSource();
        var lost = false;
        var beat = HeartbeatAsync(job.Id, cancel, () => lost = true, heartbeat.Token);
        var started = Stopwatch.GetTimestamp();
        JobOutcome outcome;
        string? error = null;
        try
        {
            var context = new JobContext(job.Id, job.Type, job.Payload, (int)job.Attempts, (int)job.MaxAttempts,
                (percent, ct) => _store.ProgressAsync(job.Id, Owner, percent, ct));
            await handler.HandleAsync(context, cancel.Token);
            outcome = JobOutcome.Succeeded;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested && !stoppingToken.IsCancellationRequested && !lost)
        {
            outcome = JobOutcome.Cancelled;
            error = "cancelled on request";
        }
        catch (Exception) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: leave the lease to run out, so another worker (or this one after a restart) runs the job again.
            await heartbeat.CancelAsync();
            await beat;
            slots.Release();
            return;
        }
        catch (PermanentJobException ex)
        {
            outcome = JobOutcome.Permanent;
            error = ex.Message;
        }
        catch (Exception ex)
        {
            outcome = JobOutcome.Failed;
            error = $"{ex.GetType().Name}: {ex.Message}";
            LogAttemptFailed(_logger, job.Type, job.Id, (int)job.Attempts, ex);
        }
        finally
        {
            await heartbeat.CancelAsync();
        }
        await beat;
        try
        {
            var state = await _store.FinishAsync(job, Owner, outcome, error, CancellationToken.None);
            _duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("type", job.Type));
            if (state is not null)
            {
                _finished.Add(1, new KeyValuePair<string, object?>("type", job.Type),
                    new KeyValuePair<string, object?>("outcome", state == JobState.Queued ? "retry" : state));
                if (state == JobState.Dead)
                {
                    LogDead(_logger, job.Type, job.Id, (int)job.Attempts, error);
                }
            }
        }
        catch (Exception ex)
        {
            // The lease runs out and the job is run again: handlers are idempotent.
            LogFinishFailed(_logger, job.Id, ex);
        }
        finally
        {
            slots.Release();
        }
        if (outcome != JobOutcome.Succeeded)
        {
            return;
        }
        Wake();
    }

    private async Task HeartbeatAsync(string id, CancellationTokenSource cancel, Action onLost, CancellationToken stop)
    {
        var interval = _options.Value.LeaseDuration / 3;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, stop);
                var (held, cancelRequested) = await _store.HeartbeatAsync(id, Owner, stop);
                if (!held)
                {
                    onLost();
                    await cancel.CancelAsync();
                    return;
                }
                if (cancelRequested)
                {
                    await cancel.CancelAsync();
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // A database blip: the lease has two more intervals before it runs out.
                LogHeartbeatFailed(_logger, id, ex);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job worker started for {Types}")]
    private static partial void LogStarted(ILogger logger, string types);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {Type} {JobId} attempt {Attempt} failed")]
    private static partial void LogAttemptFailed(ILogger logger, string type, string jobId, int attempt, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {Type} {JobId} is dead after {Attempts} attempts: {Error}")]
    private static partial void LogDead(ILogger logger, string type, string jobId, int attempts, string? error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Recording the end of job {JobId} failed; it will run again after its lease")]
    private static partial void LogFinishFailed(ILogger logger, string jobId, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Renewing the lease of job {JobId} failed")]
    private static partial void LogHeartbeatFailed(ILogger logger, string jobId, Exception exception);
}
