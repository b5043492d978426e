using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;
using Fundament.Gateway;
using Microsoft.Extensions.Time.Testing;

namespace Fundament.Tests.Gateway;

/// <summary>Retries, the retry budget, timeouts and the circuit breaker, against real upstreams.</summary>
public sealed class GatewayResilienceTests : GatewayTestBase
{
    private readonly List<Process> _processes = [];

    protected override IEnumerable<KeyValuePair<string, string>> Settings() =>
    [
        new("Fundament:Gateway:FailureThreshold", "3"),
        new("Fundament:Gateway:ReactivationPeriod", "00:10:00"),
    ];

    public override async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
            process.Dispose();
        }
        await base.DisposeAsync();
    }

    private static string UpstreamDll
    {
        get
        {
            var testBin = AppContext.BaseDirectory;
            var marker = Path.Combine("tests", "Fundament.Tests", "bin");
            var index = testBin.LastIndexOf(marker, StringComparison.Ordinal);
            return Path.Combine(testBin[..index], "tests", "Fundament.TestUpstream", "bin", testBin[(index + marker.Length)..].Trim(Path.DirectorySeparatorChar), "Fundament.TestUpstream.dll");
        }
    }

    private async Task<(Process Process, int Port)> StartUpstreamAsync(string name)
    {
        var port = FreePort();
        var ready = new TaskCompletionSource();
        var process = ChildProcess.StartDotnet(UpstreamDll, [], ["--urls", $"http://127.0.0.1:{port}", "--name", name], onOutput: line =>
        {
            if (line == "ready")
            {
                ready.TrySetResult();
            }
        });
        _processes.Add(process);
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(60), _ct);
        return (process, port);
    }

    [Fact]
    public async Task ThreeInstances_OneKilledUnderLoad_IdempotentGetsSeeNoError_AndTheDeadOneIsEjected()
    {
        object[] routes = [new { path = "/shop/{**rest}", auth = "anonymous" }];
        var instances = new List<(Process Process, string Name)>();
        foreach (var name in new[] { "shop-a", "shop-b", "shop-c" })
        {
            var (process, port) = await StartUpstreamAsync(name);
            await RegisterAsync("shop", routes, port: port, instanceId: name);
            instances.Add((process, name));
        }
        // Wait until every instance has served a request through the gateway.
        var served = new ConcurrentDictionary<string, int>();
        for (var i = 0; i < 200 && served.Count < 3; i++)
        {
            var response = await _gateway.GetAsync("/shop/warmup", _ct);
            if (response.IsSuccessStatusCode)
            {
                served.AddOrUpdate((await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["instance"]!.GetValue<string>(), 1, (_, n) => n + 1);
            }
            else
            {
                await Task.Delay(20, _ct);
            }
        }
        Assert.Equal(3, served.Count);

        var failures = new ConcurrentBag<string>();
        var byInstance = new ConcurrentDictionary<string, int>();
        async Task LoadAsync(int requests)
        {
            await Parallel.ForAsync(0, requests, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = _ct }, async (i, ct) =>
            {
                var response = await _gateway.GetAsync($"/shop/items/{i}", ct);
                if (!response.IsSuccessStatusCode)
                {
                    failures.Add($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
                    return;
                }
                byInstance.AddOrUpdate((await response.Content.ReadFromJsonAsync<JsonNode>(ct))!["instance"]!.GetValue<string>(), 1, (_, n) => n + 1);
            });
        }

        var victim = instances[1];
        var load = LoadAsync(1500);
        while (byInstance.Values.Sum() < 300)
        {
            await Task.Delay(5, _ct);
        }
        victim.Process.Kill(); // SIGKILL: no graceful shutdown, connections are reset.
        await load;
        Assert.Empty(failures);
        Assert.Contains(_factory.GatewayLog, l => l.Contains($"Destination {victim.Name} of svc-shop ejected", StringComparison.Ordinal));

        // After ejection nothing is sent to the dead instance: no more retries away from it.
        var retriesAfterEjection = RetriesFrom(victim.Name);
        byInstance.Clear();
        await LoadAsync(600);
        Assert.Empty(failures);
        Assert.Equal(retriesAfterEjection, RetriesFrom(victim.Name));
        Assert.Equal(["shop-a", "shop-c"], byInstance.Keys.Order());
        Assert.True(retriesAfterEjection >= 1, "the kill was never noticed");
    }

    private int RetriesFrom(string destination) =>
        _factory.GatewayLog.Count(l => l.Contains("Retrying GET", StringComparison.Ordinal) && l.Contains($"destination {destination} failed", StringComparison.Ordinal));

    [Fact]
    public async Task Upstream503_IsRetriedOnAnotherInstanceForGet_ButNotForPost()
    {
        await using var failing = await EchoService.StartAsync(status: 503, name: "failing");
        object[] routes = [new { path = "/half/{**rest}", auth = "anonymous", loadBalancing = "roundRobin" }];
        await RegisterAsync("half", routes, instanceId: "half-ok");
        await RegisterAsync("half", routes, port: failing.Port, instanceId: "half-failing");
        while (failing.Requests == 0)
        {
            await _gateway.GetAsync("/half/warmup", _ct);
        }

        // One failure so far (below the breaker's threshold of 3): POSTs alternate and are never retried.
        var posts = new List<HttpStatusCode>();
        for (var i = 0; i < 2; i++)
        {
            posts.Add((await _gateway.PostAsync("/half/order", new StringContent("{}"), _ct)).StatusCode);
        }
        Assert.Contains(HttpStatusCode.ServiceUnavailable, posts);
        Assert.Contains(HttpStatusCode.OK, posts);

        for (var i = 0; i < 10; i++)
        {
            var get = await _gateway.GetAsync($"/half/{i}", _ct);
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal("echo", (await get.Content.ReadFromJsonAsync<JsonNode>(_ct))!["instance"]!.GetValue<string>());
        }
        Assert.Contains(_factory.GatewayLog, l => l.Contains("Destination half-failing of svc-half~RoundRobin ejected", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RetriesAreDisabledPerRoute_AndTheUpstreamAnswerIsPassedOn()
    {
        await using var failing = await EchoService.StartAsync(status: 503, name: "failing");
        await RegisterAsync("noretry", [new { path = "/noretry/{**rest}", auth = "anonymous", retries = 0 }], port: failing.Port);
        var response = await EventuallyAsync(() => _gateway.GetAsync("/noretry/x", _ct), HttpStatusCode.ServiceUnavailable);
        Assert.Equal("failing", (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["instance"]!.GetValue<string>());
    }

    [Fact]
    public async Task RouteTimeout_Is504ProblemDetails()
    {
        await RegisterAsync("timed", [new { path = "/timed/{**rest}", auth = "anonymous", timeout = "1s" }]);
        await EventuallyAsync(() => _gateway.GetAsync("/timed/fast", _ct), HttpStatusCode.OK);
        var response = await _gateway.GetAsync("/timed/slow", _ct);
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public void RetryBudget_AllowsTwentyPercentOverTenSeconds_ThenRefills()
    {
        var time = new FakeTimeProvider();
        var budget = new RetryBudget(percent: 20, minPerSecond: 0, time);
        for (var i = 0; i < 100; i++)
        {
            budget.RecordRequest();
        }
        var allowed = 0;
        while (budget.TryRetry())
        {
            allowed++;
        }
        Assert.Equal(20, allowed);

        time.Advance(TimeSpan.FromSeconds(11));
        Assert.False(budget.TryRetry(), "no traffic in the last ten seconds, and no minimum");
        budget.RecordRequest();
        for (var i = 0; i < 9; i++)
        {
            budget.RecordRequest();
        }
        Assert.True(budget.TryRetry());
        Assert.True(budget.TryRetry());
        Assert.False(budget.TryRetry());
    }
}
