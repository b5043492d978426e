using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Gpu;

/// <summary>Offers, pools with forecasts, and placement with failover through the API, against local fakes of Vast.ai and Lambda Cloud.</summary>
public class GpuApiTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private FakeVastAi _vast = null!;
    private FakeLambdaCloud _lambda = null!;
    private FundamentFactory _factory = null!;
    private HttpClient _admin = null!;

    protected virtual FundamentFactory CreateFactory(IEnumerable<KeyValuePair<string, string>> settings) => new ConfiguredFundamentFactory(settings);

    public virtual async ValueTask InitializeAsync()
    {
        _vast = await FakeVastAi.CreateAsync();
        _lambda = await FakeLambdaCloud.CreateAsync();
        _factory = CreateFactory(
        [
            new("Fundament:Gpu:Providers:vast:BaseUrl", _vast.BaseUrl.ToString()),
            new("Fundament:Gpu:Providers:vast:ApiKeySecret", "gpu/vast"),
            new("Fundament:Gpu:Providers:lambda:BaseUrl", _lambda.BaseUrl.ToString()),
            new("Fundament:Gpu:Providers:lambda:ApiKeySecret", "gpu/lambda"),
            new("Fundament:Gpu:Providers:lambda:SshKeyNames:0", "ops"),
        ]);
        await _factory.InitializeAsync();
        _admin = await _factory.AdminAsync();
        foreach (var path in new[] { "gpu/vast", "gpu/lambda" })
        {
            Assert.Equal(HttpStatusCode.OK, (await _admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = FakeGpuCloud.Key }, _ct)).StatusCode);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _admin?.Dispose();
        GC.SuppressFinalize(this);
        // A skipped PostgreSQL variant never made them.
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
        }
        if (_vast is not null)
        {
            await _vast.DisposeAsync();
        }
        if (_lambda is not null)
        {
            await _lambda.DisposeAsync();
        }
    }

    private static object Pool(string name, decimal? daily = 50m) => new
    {
        name,
        jobTypes = new[] { "analysis.caption" },
        gpu = new { minVramGb = 24 },
        min = 0,
        max = 2,
        maxPricePerHour = 1.0m,
        budget = new { daily },
        allowSpot = false,
    };

    [Fact]
    public async Task Offers_from_every_provider_cheapest_first_and_a_provider_that_is_down_is_named_not_fatal()
    {
        var offers = await (await _admin.GetAsync("/api/v1/gpu/offers?minVram=24&spot=false", _ct)).JsonAsync();
        var items = offers["items"]!.AsArray();
        Assert.Equal(["vast/4712", "vast/4711", "lambda/gpu_1x_a10@europe-central-1", "lambda/gpu_1x_a10@us-east-1"],
            items.Select(o => $"{o!["provider"]}/{o["id"]}"));
        Assert.Equal(0.22, items[0]!["pricePerHour"]!.GetValue<double>());
        Assert.Equal(24.6, items[0]!["vramGb"]!.GetValue<double>());
        Assert.Empty(offers["providerErrors"]!.AsArray());

        _vast.Override = (503, new JsonObject { ["msg"] = "maintenance" });
        offers = await (await _admin.GetAsync("/api/v1/gpu/offers?minVram=24", _ct)).JsonAsync();
        Assert.All(offers["items"]!.AsArray(), o => Assert.Equal("lambda", o!["provider"]!.GetValue<string>()));
        Assert.Equal("vast", Assert.Single(offers["providerErrors"]!.AsArray())!["provider"]!.GetValue<string>());

        // A proxy's HTML error page instead of JSON: named as well, never a 500.
        _vast.Override = null;
        _lambda.HtmlError = 502;
        offers = await (await _admin.GetAsync("/api/v1/gpu/offers?minVram=24", _ct)).JsonAsync();
        Assert.All(offers["items"]!.AsArray(), o => Assert.Equal("vast", o!["provider"]!.GetValue<string>()));
        Assert.Contains("502 Bad Gateway", Assert.Single(offers["providerErrors"]!.AsArray())!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        await (await _admin.GetAsync("/api/v1/gpu/offers?minVram=-1", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await _admin.GetAsync("/api/v1/gpu/offers?minVram=NaN", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_pool_shows_its_forecast_before_it_is_created_and_bad_pools_change_nothing()
    {
        var dry = await (await _admin.PostAsJsonAsync("/api/v1/gpu/pools?dryRun=true", Pool("captions"), _ct)).JsonAsync();
        Assert.Null(dry["pool"]);
        Assert.Equal("4712", dry["forecast"]!["offer"]!["id"]!.GetValue<string>());
        Assert.Equal(0m, dry["forecast"]!["minDaily"]!.GetValue<decimal>());
        Assert.Equal(10.56m, dry["forecast"]!["maxDaily"]!.GetValue<decimal>()); // 2 × 24 h × $0.22
        Assert.True(dry["forecast"]!["withinBudget"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.NotFound, (await _admin.GetAsync("/api/v1/gpu/pools/captions", _ct)).StatusCode);

        await (await _admin.PostAsJsonAsync("/api/v1/gpu/pools", Pool("Bad Name!"), _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await _admin.PostAsJsonAsync("/api/v1/gpu/pools", Pool("nobudget", daily: null), _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        var created = await _admin.PostAsJsonAsync("/api/v1/gpu/pools", Pool("captions", daily: 5m), _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.False((await created.JsonAsync())["forecast"]!["withinBudget"]!.GetValue<bool>()); // $10.56 a day at most, $5 allowed: placement will hold it to $5
        await (await _admin.PostAsJsonAsync("/api/v1/gpu/pools", Pool("captions"), _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        var pools = await (await _admin.GetAsync("/api/v1/gpu/pools", _ct)).JsonAsync();
        Assert.Equal("captions", Assert.Single(pools["items"]!.AsArray())!["spec"]!["name"]!.GetValue<string>());

        // Launching machines spends money: a plain user may do neither.
        var (user, _, _) = await _factory.UserClientAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsJsonAsync("/api/v1/gpu/pools", Pool("mine"), _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsync("/api/v1/gpu/pools/captions/place", null, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync("/api/v1/gpu/offers", _ct)).StatusCode);
    }

    [Fact]
    public async Task Placement_fails_over_across_providers_logs_every_rejection_and_stops_when_every_account_refuses()
    {
        Assert.Equal(HttpStatusCode.Created, (await _admin.PostAsJsonAsync("/api/v1/gpu/pools", Pool("captions"), _ct)).StatusCode);
        // Both Vast asks are rented by someone else meanwhile: the placement moves on to Lambda.
        _vast.Taken.UnionWith(["4711", "4712"]);
        var placed = await _admin.PostAsync("/api/v1/gpu/pools/captions/place", null, _ct);
        Assert.Equal(HttpStatusCode.Created, placed.StatusCode);
        var decision = await placed.JsonAsync();
        Assert.Equal("gpu_1x_a10@europe-central-1", decision["chosen"]!["id"]!.GetValue<string>());
        Assert.NotNull(decision["instanceId"]);
        Assert.Equal(0.75m, decision["forecastCost"]!.GetValue<decimal>());
        var reasons = decision["rejected"]!.AsArray().ToDictionary(r => r!["offer"]!["id"]!.GetValue<string>(), r => r!["reason"]!.GetValue<string>());
        Assert.StartsWith("launch failed (no capacity)", reasons["4712"], StringComparison.Ordinal);
        Assert.StartsWith("launch failed (no capacity)", reasons["4711"], StringComparison.Ordinal);
        Assert.Equal("spot, and the pool allows on-demand only", reasons["4712:bid"]);
        Assert.Equal("#!/bin/sh\nexec fundament --roles media-worker\n", Assert.Single(_lambda.Launched)["user_data"]!.GetValue<string>());

        // Every account out of quota: 409 with the reason, logged and audited like a success.
        _vast.Taken.Clear();
        _vast.OutOfCredit = true;
        _lambda.QuotaExceeded = true;
        _factory.Time.Advance(TimeSpan.FromSeconds(12)); // Lambda allows one launch per 12 s
        var stopped = await _admin.PostAsync("/api/v1/gpu/pools/captions/place", null, _ct);
        Assert.Equal(HttpStatusCode.Conflict, stopped.StatusCode);
        Assert.Equal(Fundament.Gpu.Placement.PlacementPlanner.StoppedQuotaOrAuth, (await stopped.JsonAsync())["detail"]!.GetValue<string>());

        var log = (await (await _admin.GetAsync("/api/v1/gpu/decisions?pool=captions", _ct)).JsonAsync())["items"]!.AsArray();
        Assert.Equal(2, log.Count);
        Assert.Null(log[0]!["chosen"]);
        Assert.Equal("lambda", log[1]!["chosen"]!["provider"]!.GetValue<string>());
        var audit = await (await _admin.GetAsync("/api/v1/audit?action=gpu.place", _ct)).JsonAsync();
        Assert.Equal(["failure", "success"], audit["items"]!.AsArray().Select(e => e!["outcome"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_pool_never_runs_more_than_its_max_and_a_terminated_worker_frees_its_place()
    {
        var pool = new
        {
            name = "one",
            jobTypes = new[] { "analysis.caption" },
            gpu = new { minVramGb = 24 },
            max = 1,
            budget = new { daily = 50m },
            allowSpot = false,
        };
        Assert.Equal(HttpStatusCode.Created, (await _admin.PostAsJsonAsync("/api/v1/gpu/pools", pool, _ct)).StatusCode);
        var first = await (await _admin.PostAsync("/api/v1/gpu/pools/one/place", null, _ct)).JsonAsync();
        var instance = first["instanceId"]!.GetValue<string>();
        var again = await _admin.PostAsync("/api/v1/gpu/pools/one/place", null, _ct);
        await again.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Single(_vast.Created); // refused before any provider was asked

        await (await _admin.PostAsync("/api/v1/gpu/pools/one/instances/not-ours/terminate", null, _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.NoContent, (await _admin.PostAsync($"/api/v1/gpu/pools/one/instances/{instance}/terminate", null, _ct)).StatusCode);
        Assert.False(_vast.Instances.ContainsKey(instance));
        Assert.Equal(HttpStatusCode.Created, (await _admin.PostAsync("/api/v1/gpu/pools/one/place", null, _ct)).StatusCode);
        var (user, _, _) = await _factory.UserClientAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsync($"/api/v1/gpu/pools/one/instances/{instance}/terminate", null, _ct)).StatusCode);
    }

    [Fact]
    public async Task The_daily_budget_holds_launches_to_what_is_left_of_it()
    {
        // $1 a day: one hour of Lambda's $0.75 fits, a second does not.
        Assert.Equal(HttpStatusCode.Created, (await _admin.PostAsJsonAsync("/api/v1/gpu/pools", Pool("small", daily: 1m), _ct)).StatusCode);
        _vast.Taken.UnionWith(["4711", "4712"]);
        Assert.Equal(HttpStatusCode.Created, (await _admin.PostAsync("/api/v1/gpu/pools/small/place", null, _ct)).StatusCode);
        var second = await _admin.PostAsync("/api/v1/gpu/pools/small/place", null, _ct);
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        var page = await (await _admin.GetAsync("/api/v1/gpu/decisions?pool=small&limit=1", _ct)).JsonAsync();
        var log = Assert.IsType<JsonArray>(page["items"], exactMatch: false);
        Assert.True(log.Count == 1, page.ToJsonString());
        Assert.Contains(log[0]!["rejected"]!.AsArray(), r => r!["reason"]!.GetValue<string>().StartsWith("forecast $0.75 would exceed the daily budget", StringComparison.Ordinal));
    }
}

/// <summary>The same on PostgreSQL.</summary>
public sealed class PostgresGpuApiTests : GpuApiTests
{
    public override ValueTask InitializeAsync()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"{PostgresFundamentFactory.Variable} is not set");
        return base.InitializeAsync();
    }

    protected override FundamentFactory CreateFactory(IEnumerable<KeyValuePair<string, string>> settings) => new PostgresFundamentFactory { Extra = settings };
}
