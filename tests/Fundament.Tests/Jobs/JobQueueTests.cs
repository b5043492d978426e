using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Jobs;
using Fundament.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Jobs;

/// <summary>What the test handlers were asked to do and how they behave.</summary>
public sealed class JobProbe
{
    public ConcurrentQueue<string> Ran { get; } = new();

    /// <summary>Payloads that fail (transiently) on every attempt.</summary>
    public ConcurrentDictionary<string, bool> Failing { get; } = new();

    /// <summary>Payloads that fail permanently.</summary>
    public ConcurrentDictionary<string, bool> Permanent { get; } = new();

    /// <summary>Payloads whose handler waits until cancelled.</summary>
    public ConcurrentDictionary<string, TaskCompletionSource> Blocking { get; } = new();
}

internal sealed class ProbeHandler(JobProbe probe) : IJobHandler
{
    public string Type => "test.probe";

    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var name = job.Read<ProbePayload>().Name;
        probe.Ran.Enqueue($"{name}#{job.Attempt}");
        await job.ReportProgressAsync(50, cancellationToken);
        if (probe.Permanent.ContainsKey(name))
        {
            throw new PermanentJobException($"{name} can never work");
        }
        if (probe.Failing.ContainsKey(name))
        {
            throw new InvalidOperationException($"{name} failed on attempt {job.Attempt}");
        }
        if (probe.Blocking.TryGetValue(name, out var started))
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
    }
}

internal sealed record ProbePayload(string Name);

/// <summary>
/// The durable job queue through its public surface: jobs enqueued through <see cref="IJobQueue"/>,
/// run by the worker (driven pass by pass), and inspected and steered through /api/v1/jobs.
/// Runs on SQLite and, with FUNDAMENT_TEST_POSTGRES, on PostgreSQL.
/// </summary>
public abstract class JobQueueTests<TFactory> : IAsyncLifetime
    where TFactory : FundamentFactory, new()
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly TFactory _base = new();
    private WebApplicationFactory<Program> _factory = null!;

    protected JobProbe Probe { get; } = new();

    protected virtual void RequireBackend()
    {
    }

    public async ValueTask InitializeAsync()
    {
        RequireBackend();
        await _base.InitializeAsync();
        _factory = _base.WithWebHostBuilder(builder =>
        {
            builder.UseSetting("Fundament:Jobs:WorkerEnabled", "false");
            builder.UseSetting("Fundament:Jobs:MaxAttempts", "3");
            builder.UseSetting("Fundament:Jobs:RetryBase", "00:00:10");
            builder.UseSetting("Fundament:Jobs:LeaseDuration", "00:00:03");
            builder.UseSetting("Fundament:Jobs:Queues:test.probe:Concurrency", "1");
            builder.ConfigureTestServices(services =>
            {
                services.AddSingleton(Probe);
                services.AddJobHandler<ProbeHandler>();
            });
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        await _base.DisposeAsync();
    }

    private JobWorker Worker => _factory.Services.GetRequiredService<JobWorker>();

    private IJobQueue Queue => _factory.Services.GetRequiredService<IJobQueue>();

    private Task<string> EnqueueAsync(string name, int priority = 0, string? key = null) =>
        Queue.EnqueueAsync(JobRequest.Of("test.probe", new ProbePayload(name), priority, key), _ct);

    /// <summary>One worker pass, then waits for what it started.</summary>
    private async Task<int> PassAsync()
    {
        var started = await Worker.PassAsync(_ct);
        await Worker.IdleAsync();
        return started;
    }

    private async Task<HttpClient> AdminAsync()
    {
        var tokens = await LoginAsync();
        var client = _factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", tokens);
        return client;
    }

    private async Task<string> LoginAsync()
    {
        using var anonymous = _factory.CreateClient();
        var response = await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = FundamentFactory.AdminPassword }, _ct);
        return (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["access_token"]!.GetValue<string>();
    }

    private async Task<JsonNode> JobAsync(HttpClient admin, string id) =>
        (await admin.GetFromJsonAsync<JsonNode>($"/api/v1/jobs/{id}", _ct))!;

    [Fact]
    public async Task A_job_runs_once_and_succeeds_with_full_progress()
    {
        using var admin = await AdminAsync();
        var id = await EnqueueAsync("hello");
        Assert.Equal(1, await PassAsync());
        Assert.Equal(0, await PassAsync());
        var job = await JobAsync(admin, id);
        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.Equal(100, job["progress"]!.GetValue<int>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
        Assert.Equal(["hello#1"], Probe.Ran);
    }

    [Fact]
    public async Task A_failing_job_backs_off_then_goes_to_the_dead_letter_with_its_last_error_and_can_be_retried()
    {
        using var admin = await AdminAsync();
        Probe.Failing["flaky"] = true;
        var id = await EnqueueAsync("flaky");
        await PassAsync();
        var first = await JobAsync(admin, id);
        Assert.Equal("queued", first["state"]!.GetValue<string>());
        var backoff = first["runAt"]!.GetValue<DateTimeOffset>() - _base.Time.GetUtcNow();
        // First retry: RetryBase (10s) with jitter in [50%, 100%].
        Assert.InRange(backoff, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10));
        Assert.Equal(0, await PassAsync()); // not due yet

        _base.Time.Advance(TimeSpan.FromSeconds(11));
        await PassAsync();
        var second = await JobAsync(admin, id);
        var secondBackoff = second["runAt"]!.GetValue<DateTimeOffset>() - _base.Time.GetUtcNow();
        Assert.InRange(secondBackoff, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20)); // doubled

        _base.Time.Advance(TimeSpan.FromSeconds(21));
        await PassAsync();
        var dead = await JobAsync(admin, id);
        Assert.Equal("dead", dead["state"]!.GetValue<string>());
        Assert.Equal(3, dead["attempts"]!.GetValue<int>());
        Assert.Contains("flaky failed on attempt 3", dead["lastError"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(["flaky#1", "flaky#2", "flaky#3"], Probe.Ran);

        var deadList = await admin.GetFromJsonAsync<JsonArray>("/api/v1/jobs?state=dead&type=test.probe", _ct);
        Assert.Contains(deadList!, j => j!["id"]!.GetValue<string>() == id);

        Probe.Failing.Clear();
        var retried = await admin.PostAsync($"/api/v1/jobs/{id}/retry", null, _ct);
        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        await PassAsync();
        Assert.Equal("succeeded", (await JobAsync(admin, id))["state"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsync($"/api/v1/jobs/{id}/retry", null, _ct)).StatusCode);
    }

    [Fact]
    public async Task A_permanent_failure_is_dead_at_once()
    {
        using var admin = await AdminAsync();
        Probe.Permanent["never"] = true;
        var id = await EnqueueAsync("never");
        await PassAsync();
        var job = await JobAsync(admin, id);
        Assert.Equal("dead", job["state"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
        Assert.Equal("never can never work", job["lastError"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_same_key_returns_the_existing_job_and_revives_it_only_when_asked_and_dead()
    {
        using var admin = await AdminAsync();
        Probe.Permanent["doomed"] = true;
        var key = "doomed-" + Guid.NewGuid().ToString("N");
        var id = await EnqueueAsync("doomed", key: key);
        await PassAsync();
        Assert.Equal("dead", (await JobAsync(admin, id))["state"]!.GetValue<string>());

        // Asking again plainly returns the dead job as it is.
        Assert.Equal(id, await EnqueueAsync("doomed", key: key));
        Assert.Equal("dead", (await JobAsync(admin, id))["state"]!.GetValue<string>());

        // A new request that says so (archive asked again after the store was down) queues it once more.
        Probe.Permanent.TryRemove("doomed", out _);
        Assert.Equal(id, await Queue.EnqueueAsync(JobRequest.Of("test.probe", new ProbePayload("doomed"), idempotencyKey: key) with { ReviveDead = true }, _ct));
        var revived = await JobAsync(admin, id);
        Assert.Equal("queued", revived["state"]!.GetValue<string>());
        Assert.Equal(0, revived["attempts"]!.GetValue<int>());
        await PassAsync();
        Assert.Equal("succeeded", (await JobAsync(admin, id))["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_job_whose_worker_died_is_taken_over_after_its_lease_and_nothing_is_lost()
    {
        using var admin = await AdminAsync();
        var id = await EnqueueAsync("survivor");
        // Another process claims it and is killed (-9): it never renews or finishes.
        var store = _factory.Services.GetRequiredService<JobStore>();
        var claimed = await store.ClaimAsync("test.probe", "dead-worker", 10, _ct);
        Assert.Single(claimed);
        Assert.Equal(0, await PassAsync()); // still leased to the dead worker
        Assert.Equal("running", (await JobAsync(admin, id))["state"]!.GetValue<string>());

        _base.Time.Advance(TimeSpan.FromSeconds(4)); // past the 3 s lease
        Assert.Equal(1, await PassAsync());
        var job = await JobAsync(admin, id);
        Assert.Equal("succeeded", job["state"]!.GetValue<string>());
        Assert.Equal(2, job["attempts"]!.GetValue<int>());
        Assert.Equal(["survivor#2"], Probe.Ran);
    }

    [Fact]
    public async Task Higher_priority_runs_first_and_an_idempotency_key_enqueues_once()
    {
        await EnqueueAsync("low", priority: 0);
        await EnqueueAsync("high", priority: 10);
        var keyed = await EnqueueAsync("once", key: "same-key");
        Assert.Equal(keyed, await EnqueueAsync("once-again", key: "same-key"));
        await PassAsync(); // concurrency 1: one job per pass
        Assert.Equal("high#1", Probe.Ran.Single());
        await PassAsync();
        await PassAsync();
        Assert.Equal(["high#1", "low#1", "once#1"], Probe.Ran);
    }

    [Fact]
    public async Task A_paused_queue_starts_nothing_until_resumed()
    {
        using var admin = await AdminAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync("/api/v1/jobs/queues/test.probe/pause", null, _ct)).StatusCode);
        var id = await EnqueueAsync("waiting");
        Assert.Equal(0, await PassAsync());
        var queues = await admin.GetFromJsonAsync<JsonArray>("/api/v1/jobs/queues", _ct);
        var queue = queues!.Single(q => q!["type"]!.GetValue<string>() == "test.probe")!;
        Assert.True(queue["paused"]!.GetValue<bool>());
        Assert.Equal(1, queue["queued"]!.GetValue<long>());
        Assert.Equal(1, queue["concurrency"]!.GetValue<int>());

        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync("/api/v1/jobs/queues/test.probe/resume", null, _ct)).StatusCode);
        Assert.Equal(1, await PassAsync());
        Assert.Equal("succeeded", (await JobAsync(admin, id))["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_queued_job_is_cancelled_at_once_and_a_running_one_stops_at_its_next_heartbeat()
    {
        using var admin = await AdminAsync();
        var queued = await EnqueueAsync("not-yet");
        var cancelled = await (await admin.PostAsync($"/api/v1/jobs/{queued}/cancel", null, _ct)).JsonAsync();
        Assert.Equal("cancelled", cancelled["state"]!.GetValue<string>());
        Assert.Equal(0, await PassAsync());

        var started = new TaskCompletionSource();
        Probe.Blocking["long"] = started;
        var running = await EnqueueAsync("long");
        Assert.Equal(1, await Worker.PassAsync(_ct));
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10), _ct);
        var asked = await (await admin.PostAsync($"/api/v1/jobs/{running}/cancel", null, _ct)).JsonAsync();
        Assert.True(asked["cancelRequested"]!.GetValue<bool>());
        await Worker.IdleAsync().WaitAsync(TimeSpan.FromSeconds(15), _ct); // heartbeat every lease/3 = 1 s
        Assert.Equal("cancelled", (await JobAsync(admin, running))["state"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsync($"/api/v1/jobs/{running}/cancel", null, _ct)).StatusCode);
    }

    [Fact]
    public async Task Two_workers_claiming_at_once_never_take_the_same_job()
    {
        var ids = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            ids.Add(await EnqueueAsync($"job{i}"));
        }
        var store = _factory.Services.GetRequiredService<JobStore>();
        async Task<List<string>> DrainAsync(string owner)
        {
            var mine = new List<string>();
            while (true)
            {
                var batch = await store.ClaimAsync("test.probe", owner, 3, _ct);
                if (batch.Count == 0)
                {
                    return mine;
                }
                mine.AddRange(batch.Select(j => j.Id));
            }
        }
        var results = await Task.WhenAll(Task.Run(() => DrainAsync("worker-a"), _ct), Task.Run(() => DrainAsync("worker-b"), _ct));
        var all = results.SelectMany(r => r).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        Assert.Equal(ids.Order(), all.Order());
    }

    [Fact]
    public async Task Bad_requests_get_problem_details_and_change_nothing()
    {
        using var admin = await AdminAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.GetAsync("/api/v1/jobs?state=exploded", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.GetAsync("/api/v1/jobs?limit=0", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/jobs/nope", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsync("/api/v1/jobs/nope/retry", null, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsync("/api/v1/jobs/nope/cancel", null, _ct)).StatusCode);
        using var anonymous = _factory.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/jobs", _ct)).StatusCode);
    }
}

public sealed class SqliteJobQueueTests : JobQueueTests<SqliteFundamentFactory>;

public sealed class PostgresJobQueueTests : JobQueueTests<PostgresFundamentFactory>
{
    protected override void RequireBackend() =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"{PostgresFundamentFactory.Variable} is not set");
}
