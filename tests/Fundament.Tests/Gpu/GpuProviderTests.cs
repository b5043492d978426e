using System.Text.Json.Nodes;
using Fundament.Gpu.Placement;
using Fundament.Gpu.Providers;
using Microsoft.Extensions.Time.Testing;

namespace Fundament.Tests.Gpu;

/// <summary>The provider adapters against local fakes of Vast.ai and Lambda Cloud, and a failover between them through the planner.</summary>
public sealed class GpuProviderTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 8, 9, 0, 0, TimeSpan.Zero));
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private FakeVastAi _vastCloud = null!;
    private FakeLambdaCloud _lambdaCloud = null!;
    private VastAiProvider _vast = null!;
    private LambdaCloudProvider _lambda = null!;

    private static readonly GpuConstraints Needs24 = new([], 24);
    private static readonly GpuLaunchRequest Request = new("analysis-1", "#!/bin/sh\nexec fundament --roles gpu-worker", 0.35m);

    public async ValueTask InitializeAsync()
    {
        _vastCloud = await FakeVastAi.CreateAsync();
        _lambdaCloud = await FakeLambdaCloud.CreateAsync();
        _vast = new VastAiProvider(_http, new GpuProviderConnection(_vastCloud.BaseUrl, _ => Task.FromResult(FakeGpuCloud.Key)), _time);
        _lambda = new LambdaCloudProvider(_http, new GpuProviderConnection(_lambdaCloud.BaseUrl, _ => Task.FromResult(FakeGpuCloud.Key)), _time, ["ops"]);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _vastCloud.DisposeAsync();
        await _lambdaCloud.DisposeAsync();
    }

    [Fact]
    public async Task Vast_offers_are_normalised_from_MB_and_list_on_demand_and_interruptible_apart()
    {
        var offers = await _vast.OffersAsync(Needs24, _ct);
        Assert.Equal(4, offers.Count);
        var onDemand = offers.Single(o => o.Id == "4711");
        // gpu_ram is in MB: 24564 MB is 24.6 GB, the same unit the search filter uses (24 GB = 24000 MB).
        Assert.Equal(("vast", "RTX 4090", 1, 24.6, 0.412m, false, "Sweden, SE"), (onDemand.Provider, onDemand.Gpu, onDemand.Count, onDemand.VramGb, onDemand.PricePerHour, onDemand.Spot, onDemand.Region));
        var bid = offers.Single(o => o.Id == "4711:bid");
        Assert.Equal((0.29m, true), (bid.PricePerHour, bid.Spot));
        Assert.Empty(await _vast.OffersAsync(new GpuConstraints([], 48), _ct));
    }

    [Fact]
    public async Task Vast_launch_status_preemption_and_destroy_and_its_refusals_are_classified()
    {
        var offers = await _vast.OffersAsync(Needs24, _ct);
        var id = await _vast.LaunchAsync(offers.Single(o => o.Id == "4711:bid"), Request, _ct);
        var created = Assert.Single(_vastCloud.Created);
        Assert.Equal(0.29, created["price"]!.GetValue<double>()); // bids the offer's price, which placement ranked and budgeted, not the pool's cap
        Assert.Contains("gpu-worker", created["onstart"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(GpuInstanceState.Starting, await _vast.StatusAsync(id, _ct));
        _vastCloud.Instances[id] = ("running", "running");
        Assert.Equal(GpuInstanceState.Running, await _vast.StatusAsync(id, _ct));
        _vastCloud.Instances[id] = ("exited", "running"); // outbid: stopped while its owner wants it running
        Assert.Equal(GpuInstanceState.Preempted, await _vast.StatusAsync(id, _ct));
        await _vast.TerminateAsync(id, _ct);
        await _vast.TerminateAsync(id, _ct); // gone already: not an error
        Assert.Equal(GpuInstanceState.Terminated, await _vast.StatusAsync(id, _ct));

        // The same ask again: someone (we) took it.
        Assert.Equal(LaunchFailure.Capacity, (await Assert.ThrowsAsync<GpuLaunchException>(() => _vast.LaunchAsync(offers.Single(o => o.Id == "4711"), Request, _ct))).Failure);
        _vastCloud.OutOfCredit = true;
        var quota = await Assert.ThrowsAsync<GpuLaunchException>(() => _vast.LaunchAsync(offers.Single(o => o.Id == "4712"), Request, _ct));
        Assert.Equal(LaunchFailure.Quota, quota.Failure);
        Assert.Contains("insufficient_credit", quota.Message, StringComparison.Ordinal);
        _vastCloud.Override = (429, new JsonObject { ["success"] = false, ["error"] = "rate_limited", ["msg"] = "slow down" });
        Assert.Equal(LaunchFailure.RateLimited, (await Assert.ThrowsAsync<GpuLaunchException>(() => _vast.LaunchAsync(offers[0], Request, _ct))).Failure);
        _vastCloud.Override = (503, new JsonObject { ["msg"] = "maintenance" });
        Assert.Equal(LaunchFailure.Transient, (await Assert.ThrowsAsync<GpuLaunchException>(() => _vast.OffersAsync(Needs24, _ct))).Failure);
        _vastCloud.Override = null;

        var wrongKey = new VastAiProvider(_http, new GpuProviderConnection(_vastCloud.BaseUrl, _ => Task.FromResult("stolen")), _time);
        Assert.Equal(LaunchFailure.Auth, (await Assert.ThrowsAsync<GpuLaunchException>(() => wrongKey.LaunchAsync(offers[0], Request, _ct))).Failure);
    }

    [Fact]
    public async Task Lambda_offers_one_per_region_with_capacity_and_launches_at_most_once_per_12_seconds()
    {
        var offers = await _lambda.OffersAsync(Needs24, _ct);
        Assert.Equal(["gpu_1x_a10@europe-central-1", "gpu_1x_a10@us-east-1"], offers.Select(o => o.Id).Order());
        Assert.All(offers, o => Assert.Equal(("A10", 24.0, 1, 0.75m, false), (o.Gpu, o.VramGb, o.Count, o.PricePerHour, o.Spot)));

        var id = await _lambda.LaunchAsync(offers[0], Request, _ct);
        Assert.Equal(["ops"], Assert.Single(_lambdaCloud.Launched)["ssh_key_names"]!.AsArray().Select(k => k!.GetValue<string>()));
        Assert.Equal(GpuInstanceState.Starting, await _lambda.StatusAsync(id, _ct));
        _lambdaCloud.Instances[id] = "active";
        Assert.Equal(GpuInstanceState.Running, await _lambda.StatusAsync(id, _ct));

        // A second launch within 12 s is refused here, without spending a request on the provider.
        var requests = _lambdaCloud.Requests.Count;
        var limited = await Assert.ThrowsAsync<GpuLaunchException>(() => _lambda.LaunchAsync(offers[1], Request, _ct));
        Assert.Equal(LaunchFailure.RateLimited, limited.Failure);
        Assert.Equal(requests, _lambdaCloud.Requests.Count);
        _time.Advance(LambdaCloudProvider.LaunchInterval);
        _lambdaCloud.RefuseIn.Add(offers[1].Region);
        var capacity = await Assert.ThrowsAsync<GpuLaunchException>(() => _lambda.LaunchAsync(offers[1], Request, _ct));
        Assert.Equal(LaunchFailure.Capacity, capacity.Failure);
        Assert.Contains("insufficient-capacity", capacity.Message, StringComparison.Ordinal);
        _time.Advance(LambdaCloudProvider.LaunchInterval);
        _lambdaCloud.QuotaExceeded = true;
        Assert.Equal(LaunchFailure.Quota, (await Assert.ThrowsAsync<GpuLaunchException>(() => _lambda.LaunchAsync(offers[0], Request, _ct))).Failure);

        await _lambda.TerminateAsync(id, _ct);
        await _lambda.TerminateAsync(id, _ct);
        Assert.Equal(GpuInstanceState.Terminated, await _lambda.StatusAsync(id, _ct));
    }

    [Fact]
    public async Task RunPod_lists_each_cloud_as_its_own_offer_and_a_pod_billed_above_its_offer_is_terminated_and_refused()
    {
        await using var cloud = await FakeRunPod.CreateAsync();
        var runpod = new RunPodProvider(_http, new GpuProviderConnection(cloud.BaseUrl, _ => Task.FromResult(FakeGpuCloud.Key)), _time, "fundament/gpu-worker:1");
        var offers = await runpod.OffersAsync(Needs24, _ct);
        Assert.Equal(
            ["NVIDIA GeForce RTX 4090|COMMUNITY|on-demand 0.34 False", "NVIDIA GeForce RTX 4090|COMMUNITY|spot 0.2 True", "NVIDIA GeForce RTX 4090|SECURE|on-demand 0.69 False"],
            offers.Select(o => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{o.Id} {o.PricePerHour} {o.Spot}")).Order());

        var community = offers.Single(o => o.Id.EndsWith("COMMUNITY|on-demand", StringComparison.Ordinal));
        var pod = await runpod.LaunchAsync(community, Request, _ct);
        Assert.Equal("COMMUNITY", Assert.Single(cloud.Deployed)["cloudType"]!.GetValue<string>());
        Assert.Equal(GpuInstanceState.Starting, await runpod.StatusAsync(pod, _ct));
        cloud.Pods[pod] = ("RUNNING", "RESERVED", true);
        Assert.Equal(GpuInstanceState.Running, await runpod.StatusAsync(pod, _ct));

        // The trap: billed at the secure price for a community offer. Terminated at once, refused, and the planner moves on.
        cloud.BillSecurePrice = true;
        var trapped = await Assert.ThrowsAsync<GpuLaunchException>(() => runpod.LaunchAsync(community, Request, _ct));
        Assert.Contains("billed $0.690/h for an offer of $0.340/h", trapped.Message, StringComparison.Ordinal);
        Assert.Single(cloud.Pods); // only the first pod is left

        var spot = offers.Single(o => o.Spot);
        var rented = await runpod.LaunchAsync(spot, Request with { MaxPricePerHour = 0.25m }, _ct);
        Assert.Equal(0.2, cloud.Deployed.Last()["bidPerGpu"]!.GetValue<double>()); // the offer's price, not the cap
        cloud.Pods[rented] = ("EXITED", "INTERRUPTABLE", false);
        Assert.Equal(GpuInstanceState.Preempted, await runpod.StatusAsync(rented, _ct));
        await runpod.TerminateAsync(rented, _ct);
        Assert.Equal(GpuInstanceState.Terminated, await runpod.StatusAsync(rented, _ct));

        cloud.NoCapacity = true;
        Assert.Equal(LaunchFailure.Capacity, (await Assert.ThrowsAsync<GpuLaunchException>(() => runpod.LaunchAsync(community, Request, _ct))).Failure);
        cloud.NoCapacity = false;
        cloud.LowBalance = true;
        Assert.Equal(LaunchFailure.Quota, (await Assert.ThrowsAsync<GpuLaunchException>(() => runpod.LaunchAsync(community, Request, _ct))).Failure);
        var wrongKey = new RunPodProvider(_http, new GpuProviderConnection(cloud.BaseUrl, _ => Task.FromResult("nope")), _time, "img");
        Assert.Equal(LaunchFailure.Auth, (await Assert.ThrowsAsync<GpuLaunchException>(() => wrongKey.OffersAsync(Needs24, _ct))).Failure);
    }

    [Fact]
    public async Task A_capacity_refusal_at_the_cheaper_provider_fails_over_to_the_other_and_quota_everywhere_stops()
    {
        // Lambda's offers are priced below Vast's here, so they are tried first; both of its regions then refuse for capacity.
        var pool = new GpuPoolSpec("analysis", ["analysis.caption"], new GpuConstraints([], 24), 0, 2, TimeSpan.FromMinutes(10), 1.0m,
            new GpuBudget(Daily: 20m, Monthly: null), ProviderFilter.Any, AllowSpot: false);
        var providers = new Dictionary<string, IGpuProvider> { ["vast"] = _vast, ["lambda"] = _lambda };
        var offers = (await _lambda.OffersAsync(Needs24, _ct)).Select(o => o with { PricePerHour = 0.20m })
            .Concat(await _vast.OffersAsync(Needs24, _ct)).ToList();
        _lambdaCloud.RefuseIn.Add("europe-central-1");
        _lambdaCloud.RefuseIn.Add("us-east-1");
        string? instance = null;
        var decision = await PlacementPlanner.PlaceAsync(pool, offers, new Spend(0, 0), TimeSpan.FromHours(1), async (offer, ct) =>
        {
            instance = await providers[offer.Provider].LaunchAsync(offer, Request, ct);
        }, _ct);
        Assert.Equal("vast", decision.Chosen!.Provider);
        Assert.Equal("4712", decision.Chosen.Id); // the cheaper Vast offer
        Assert.NotNull(instance);
        Assert.Contains(decision.Rejected, r => r.Offer.Provider == "lambda" && r.Reason.Contains("insufficient-capacity", StringComparison.Ordinal));
        Assert.Contains(decision.Rejected, r => r.Offer.Id.EndsWith(":bid", StringComparison.Ordinal) && r.Reason == "spot, and the pool allows on-demand only");

        // Both accounts out of quota: the placement stops with the reason, each offer tried at most once.
        _time.Advance(TimeSpan.FromMinutes(1));
        _lambdaCloud.QuotaExceeded = true;
        _vastCloud.OutOfCredit = true;
        var launches = 0;
        var stopped = await PlacementPlanner.PlaceAsync(pool, offers, new Spend(0, 0), TimeSpan.FromHours(1), async (offer, ct) =>
        {
            launches++;
            await providers[offer.Provider].LaunchAsync(offer, Request, ct);
        }, _ct);
        Assert.Null(stopped.Chosen);
        Assert.Equal(PlacementPlanner.StoppedQuotaOrAuth, stopped.Stopped);
        Assert.Equal(2, launches); // one per provider: the rest of each provider's offers are dropped after its quota refusal
    }
}
