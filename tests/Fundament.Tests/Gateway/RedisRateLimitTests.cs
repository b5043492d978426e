using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Threading.RateLimiting;
using Fundament.Core.Redis;
using Fundament.Gateway;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Fundament.Tests.Gateway;

/// <summary>Rate limits shared through a real Redis (<c>FUNDAMENT_TEST_REDIS</c>), and what happens when Redis is gone.</summary>
public sealed class RedisRateLimitTests : IAsyncDisposable
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly RedisRateLimitHealth _health;

    public RedisRateLimitTests() => _health = new RedisRateLimitHealth(_time, NullLogger<RedisRateLimitHealth>.Instance, new TestMeterFactory());

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }
    }

    private RedisConnection Connect(string configuration, string prefix)
    {
        var connection = new RedisConnection(Options.Create(new RedisOptions { Configuration = configuration, KeyPrefix = prefix }));
        _owned.Add(connection);
        return connection;
    }

    private RedisRateLimiter Limiter(RedisConnection redis, RateLimitPolicyOptions policy, bool failOpen = true, string partition = "global") =>
        new("test", policy, partition, redis, _health, failOpen, _time);

    private async Task<bool> AcquireAsync(RateLimiter limiter) => (await limiter.AcquireAsync(1, _ct)).IsAcquired;

    private async Task<int> CountAcquiredAsync(RateLimiter limiter, int attempts)
    {
        var acquired = 0;
        for (var i = 0; i < attempts; i++)
        {
            acquired += await AcquireAsync(limiter) ? 1 : 0;
        }
        return acquired;
    }

    [Fact]
    public async Task FixedWindow_TwoReplicasShareOneLimit_AndRefusalsCarryRetryAfter()
    {
        var configuration = TestRedis.Require();
        var prefix = TestRedis.UniquePrefix();
        var policy = new RateLimitPolicyOptions { Algorithm = "fixed", PermitLimit = 5, Window = TimeSpan.FromSeconds(10) };
        // Two connections: two gateway replicas.
        var first = Limiter(Connect(configuration, prefix), policy);
        var second = Limiter(Connect(configuration, prefix), policy);
        var results = new List<bool>();
        for (var i = 0; i < 8; i++)
        {
            results.Add(await AcquireAsync(i % 2 == 0 ? first : second));
        }
        Assert.Equal([true, true, true, true, true, false, false, false], results);
        var refused = await second.AcquireAsync(1, _ct);
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.InRange(retryAfter, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task SlidingWindow_WeighsThePreviousWindow()
    {
        var redis = Connect(TestRedis.Require(), TestRedis.UniquePrefix());
        // Start at a window boundary of the gateway's clock.
        _time.SetUtcNow(DateTimeOffset.FromUnixTimeMilliseconds((_time.GetUtcNow().ToUnixTimeMilliseconds() / 10_000 + 1) * 10_000));
        var limiter = Limiter(redis, new RateLimitPolicyOptions { Algorithm = "sliding", PermitLimit = 4, Window = TimeSpan.FromSeconds(10) });
        Assert.Equal(4, await CountAcquiredAsync(limiter, 6));
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, await CountAcquiredAsync(limiter, 2)); // the previous window still weighs fully
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(2, await CountAcquiredAsync(limiter, 4)); // half of it has slid out
    }

    [Fact]
    public async Task TokenBucket_RefillsPerPeriod()
    {
        var limiter = Limiter(Connect(TestRedis.Require(), TestRedis.UniquePrefix()),
            new RateLimitPolicyOptions { Algorithm = "tokenBucket", PermitLimit = 3, TokensPerPeriod = 1, ReplenishmentPeriod = TimeSpan.FromSeconds(1) });
        Assert.Equal(3, await CountAcquiredAsync(limiter, 5));
        var refused = await limiter.AcquireAsync(1, _ct);
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.InRange(retryAfter, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(1));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(2, await CountAcquiredAsync(limiter, 4));
    }

    [Fact]
    public async Task Concurrency_PermitsReturnWhenLeasesEnd_AcrossReplicas()
    {
        var configuration = TestRedis.Require();
        var prefix = TestRedis.UniquePrefix();
        var policy = new RateLimitPolicyOptions { Algorithm = "concurrency", PermitLimit = 2 };
        var first = Limiter(Connect(configuration, prefix), policy);
        var second = Limiter(Connect(configuration, prefix), policy);
        using var a = await first.AcquireAsync(1, _ct);
        var b = await second.AcquireAsync(1, _ct);
        Assert.True(a.IsAcquired && b.IsAcquired);
        Assert.False(await AcquireAsync(first));
        Assert.Null(first.IdleDuration); // a held permit keeps the limiter alive
        b.Dispose();
        // The release is sent fire-and-forget on the other replica's connection, so this replica
        // may ask before Redis has it; the permit must come back, not necessarily on the first ask.
        var acquired = await AcquireAsync(first);
        for (var i = 0; i < 50 && !acquired; i++)
        {
            await Task.Delay(20, _ct);
            acquired = await AcquireAsync(first);
        }
        Assert.True(acquired);
    }

    [Fact]
    public async Task RedisDown_FailsOpenByDefault_OrClosedWhenConfigured()
    {
        var dead = Connect($"127.0.0.1:{GatewayTestBase.FreePort()},connectTimeout=200", TestRedis.UniquePrefix());
        var policy = new RateLimitPolicyOptions { Algorithm = "fixed", PermitLimit = 1 };
        Assert.Equal(3, await CountAcquiredAsync(Limiter(dead, policy), 3));
        Assert.Equal(0, await CountAcquiredAsync(Limiter(dead, policy, failOpen: false), 3));
    }

    [Fact]
    public async Task TwoGatewayReplicasSharingRedis_EnforceOneCombinedLimit()
    {
        var configuration = TestRedis.Require();
        var prefix = TestRedis.UniquePrefix();
        await using var upstream = await EchoService.StartAsync();
        KeyValuePair<string, string>[] settings =
        [
            new("Fundament:Redis:Configuration", configuration),
            new("Fundament:Redis:KeyPrefix", prefix),
            new("Fundament:Gateway:RateLimits:five-per-10s:PermitLimit", "5"),
            new("Fundament:Gateway:RateLimits:five-per-10s:Window", "00:00:10"),
            new("Fundament:Gateway:RateLimits:five-per-10s:PartitionBy", "global"),
        ];
        await using var one = await GatewayNode.StartAsync(settings);
        await using var two = await GatewayNode.StartAsync(settings);
        object[] routes = [new { path = "/shared/{**rest}", auth = "anonymous", rateLimit = "five-per-10s" }, new { path = "/shared-probe/{**rest}", auth = "anonymous" }];
        foreach (var node in new[] { one, two })
        {
            await node.ClaimAsync("shared", "/shared-probe");
            await node.RegisterAsync("shared", routes, upstream.Port);
            await EventuallyOkAsync(node.Gateway, "/shared-probe/x");
        }
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 10; i++)
        {
            statuses.Add((await (i % 2 == 0 ? one : two).Gateway.GetAsync($"/shared/{i}", _ct)).StatusCode);
        }
        Assert.Equal(5, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(5, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5)], statuses.Take(5));

        var ready = await (await one.Api.GetAsync("/health/ready", _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.Equal("Healthy", ready!["checks"]!["redis"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task GatewayWithRedisDown_LetsTrafficThrough_IsDegraded_AndRaisesBackendDown()
    {
        await using var upstream = await EchoService.StartAsync();
        await using var node = await GatewayNode.StartAsync(
        [
            new("Fundament:Redis:Configuration", $"127.0.0.1:{GatewayTestBase.FreePort()},connectTimeout=200"),
            new("Fundament:Gateway:RateLimits:one:PermitLimit", "1"),
            new("Fundament:Gateway:RateLimits:one:PartitionBy", "global"),
        ]);
        await node.RegisterAsync("open", [new { path = "/open/{**rest}", auth = "anonymous", rateLimit = "one" }], upstream.Port);
        await EventuallyOkAsync(node.Gateway, "/open/x");
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await node.Gateway.GetAsync($"/open/{i}", _ct)).StatusCode);
        }
        Assert.Contains(node.Factory.GatewayLog, l => l.Contains("requests are let through (fail open)", StringComparison.Ordinal));

        var readiness = await node.Api.GetAsync("/health/ready", _ct);
        Assert.Equal(HttpStatusCode.OK, readiness.StatusCode); // still in its load balancer
        var ready = await readiness.Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.Equal("Degraded", ready!["checks"]!["redis"]!["status"]!.GetValue<string>());

        await node.Factory.Services.GetRequiredService<Fundament.Alerts.AlertEvaluator>().EvaluateAsync(_ct);
        var alerts = await (await node.Api.GetAsync("/api/v1/alerts", _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.Contains(alerts!.AsArray(), a => a!["subject"]!.GetValue<string>() == "backend:redis" && a["ruleId"]!.GetValue<string>() == "backend-down");
    }

    private async Task EventuallyOkAsync(HttpClient client, string path)
    {
        for (var i = 0; i < 100; i++)
        {
            if ((await client.GetAsync(path, _ct)).StatusCode == HttpStatusCode.OK)
            {
                return;
            }
            await Task.Delay(50, _ct);
        }
        Assert.Fail($"{path} never answered 200");
    }
}
