using Fundament.Gpu.Placement;

namespace Fundament.UnitTests.Gpu;

public sealed class PlacementPlannerTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 8, 12, 0, 0, TimeSpan.Zero);

    private static GpuOffer Offer(string provider, string id, decimal price, bool spot = false, string gpu = "RTX 4090", double vram = 24, int count = 1, bool available = true) =>
        new(provider, id, "eu", gpu, count, vram, price, spot, available, Now);

    private static GpuPoolSpec Pool(decimal? maxPrice = null, GpuBudget? budget = null, ProviderFilter? providers = null, bool allowSpot = true, IReadOnlyList<string>? types = null) =>
        new("analysis", ["analysis.caption"], new GpuConstraints(types ?? [], 24), 0, 4, TimeSpan.FromMinutes(10), maxPrice, budget ?? new GpuBudget(null, null), providers ?? ProviderFilter.Any, allowSpot);

    [Fact]
    public void Offers_that_do_not_fit_are_rejected_with_the_reason_and_the_rest_ranked_by_effective_price()
    {
        var offers = new[]
        {
            Offer("vast", "small", 0.10m, vram: 12),
            Offer("vast", "pair", 0.50m, count: 2),
            Offer("lambda", "a10", 0.75m, gpu: "A10"),
            Offer("aws", "dear", 2.40m),
            Offer("denied", "x", 0.05m),
            Offer("runpod", "gone", 0.20m, available: false),
            Offer("vast", "spot", 0.40m, spot: true),      // counts 0.50 with the spot risk
            Offer("runpod", "secure", 0.45m),
        };
        var (ranked, rejected) = PlacementPlanner.Rank(Pool(maxPrice: 1.5m, providers: new([], ["denied"]), types: ["RTX 4090"]), offers, new Spend(0, 0), TimeSpan.FromHours(1));
        Assert.Equal(["secure", "spot"], ranked.Select(o => o.Id));
        var reasons = rejected.ToDictionary(r => r.Offer.Id, r => r.Reason);
        Assert.Equal("12 GB of GPU memory, the pool needs 24", reasons["small"]);
        Assert.Equal("2 GPUs, the pool wants 1", reasons["pair"]);
        Assert.Equal("GPU A10 is not one of RTX 4090", reasons["a10"]);
        Assert.Equal("$2.400/h is above the pool's maximum of $1.500/h", reasons["dear"]);
        Assert.Equal("provider denied is not allowed for this pool", reasons["x"]);
        Assert.Equal("not available", reasons["gone"]);

        var onDemandOnly = PlacementPlanner.Rank(Pool(allowSpot: false), [Offer("vast", "spot", 0.1m, spot: true)], new Spend(0, 0), TimeSpan.FromHours(1));
        Assert.Equal("spot, and the pool allows on-demand only", Assert.Single(onDemandOnly.Rejected).Reason);
    }

    [Fact]
    public void The_budget_is_enforced_before_a_launch_with_the_forecast_cost()
    {
        var pool = Pool(budget: new GpuBudget(Daily: 10m, Monthly: 100m));
        var (ranked, rejected) = PlacementPlanner.Rank(pool, [Offer("aws", "big", 1.00m), Offer("vast", "cheap", 0.30m)], new Spend(Today: 6m, ThisMonth: 20m), TimeSpan.FromHours(8));
        Assert.Equal("cheap", Assert.Single(ranked).Id); // 8 h × $0.30 = $2.40 fits the $4 left today
        Assert.StartsWith("forecast $8.00 would exceed the daily budget ($6.00 of $10.00 spent)", Assert.Single(rejected).Reason, StringComparison.Ordinal);
        var monthly = PlacementPlanner.Rank(pool, [Offer("vast", "cheap", 0.30m)], new Spend(0, 99m), TimeSpan.FromHours(8));
        Assert.StartsWith("forecast $2.40 would exceed the monthly budget", Assert.Single(monthly.Rejected).Reason, StringComparison.Ordinal);
        Assert.Equal(2.4m, PlacementPlanner.Forecast(Offer("vast", "cheap", 0.30m), TimeSpan.FromHours(8)));
    }

    [Fact]
    public async Task A_capacity_error_fails_over_to_the_next_offer_and_the_log_keeps_the_refusal()
    {
        var tried = new List<string>();
        var decision = await PlacementPlanner.PlaceAsync(Pool(), [Offer("lambda", "a", 0.30m), Offer("runpod", "b", 0.40m), Offer("aws", "c", 0.90m)], new Spend(0, 0), TimeSpan.FromHours(1),
            (offer, _) =>
            {
                tried.Add(offer.Id);
                return offer.Id == "a" ? throw new GpuLaunchException(LaunchFailure.Capacity, "insufficient-capacity") : Task.CompletedTask;
            }, CancellationToken.None);
        Assert.Equal("b", decision.Chosen!.Id);
        Assert.Equal(["a", "b"], tried);
        Assert.Equal("launch failed (no capacity): insufficient-capacity", Assert.Single(decision.Rejected).Reason);
        Assert.Null(decision.Stopped);
        Assert.Equal(0.40m, decision.ForecastCost);
    }

    [Fact]
    public async Task A_quota_error_drops_the_provider_and_when_every_provider_refuses_the_placement_stops_without_looping()
    {
        var offers = new[] { Offer("vast", "v1", 0.30m), Offer("vast", "v2", 0.31m), Offer("runpod", "r1", 0.40m), Offer("aws", "a1", 0.90m) };
        var calls = 0;
        var decision = await PlacementPlanner.PlaceAsync(Pool(), offers, new Spend(0, 0), TimeSpan.FromHours(1), (offer, _) =>
        {
            calls++;
            throw new GpuLaunchException(offer.Provider == "aws" ? LaunchFailure.Auth : LaunchFailure.Quota, $"{offer.Provider} says no");
        }, CancellationToken.None);
        Assert.Null(decision.Chosen);
        Assert.Equal(PlacementPlanner.StoppedQuotaOrAuth, decision.Stopped);
        Assert.Equal(3, calls); // v2 was never tried: its provider had refused for quota
        Assert.Equal(4, decision.Rejected.Count);
        Assert.Equal("provider vast refused an earlier offer for quota", decision.Rejected.Single(r => r.Offer.Id == "v2").Reason);

        // Capacity everywhere is not a stop for good: the next placement tries again.
        var busy = await PlacementPlanner.PlaceAsync(Pool(), offers, new Spend(0, 0), TimeSpan.FromHours(1),
            (_, _) => throw new GpuLaunchException(LaunchFailure.Capacity, "none"), CancellationToken.None);
        Assert.StartsWith("every fitting offer failed for capacity", busy.Stopped, StringComparison.Ordinal);
        var none = await PlacementPlanner.PlaceAsync(Pool(maxPrice: 0.01m), offers, new Spend(0, 0), TimeSpan.FromHours(1), (_, _) => Task.CompletedTask, CancellationToken.None);
        Assert.Equal("no offer fits the pool's constraints and budget", none.Stopped);
    }

    [Fact]
    public async Task A_launch_without_an_answer_stops_the_placement_rather_than_risk_a_second_machine()
    {
        var tried = new List<string>();
        var decision = await PlacementPlanner.PlaceAsync(Pool(), [Offer("vast", "v1", 0.30m), Offer("runpod", "r1", 0.40m)], new Spend(0, 0), TimeSpan.FromHours(1), (offer, _) =>
        {
            tried.Add(offer.Id);
            throw new GpuLaunchException(LaunchFailure.Unknown, "the provider did not answer in time");
        }, CancellationToken.None);
        Assert.Equal(["v1"], tried);
        Assert.Null(decision.Chosen);
        Assert.Contains("may have started a machine", decision.Stopped, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_stop_for_good_is_decided_per_provider_not_per_offer()
    {
        // Vast's first ask is taken (capacity), its second refused for quota; Lambda refuses the key: nobody can launch.
        var decision = await PlacementPlanner.PlaceAsync(Pool(), [Offer("vast", "v1", 0.30m), Offer("vast", "v2", 0.31m), Offer("lambda", "l1", 0.40m)], new Spend(0, 0), TimeSpan.FromHours(1),
            (offer, _) => throw new GpuLaunchException(offer.Id switch { "v1" => LaunchFailure.Capacity, "v2" => LaunchFailure.Quota, _ => LaunchFailure.Auth }, "no"),
            CancellationToken.None);
        Assert.Equal(PlacementPlanner.StoppedQuotaOrAuth, decision.Stopped);
    }

    [Fact]
    public async Task A_rate_limited_provider_is_deferred_and_another_launches()
    {
        var decision = await PlacementPlanner.PlaceAsync(Pool(), [Offer("lambda", "l1", 0.30m), Offer("lambda", "l2", 0.32m), Offer("runpod", "r1", 0.40m)], new Spend(0, 0), TimeSpan.FromHours(1),
            (offer, _) => offer.Provider == "lambda" ? throw new GpuLaunchException(LaunchFailure.RateLimited, "1 launch per 12 s") : Task.CompletedTask,
            CancellationToken.None);
        Assert.Equal("r1", decision.Chosen!.Id);
        Assert.Contains("rate-limiting", decision.Rejected.Single(r => r.Offer.Id == "l2").Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_autoscaler_drains_the_queue_within_the_target_scales_to_zero_and_watches_the_budget()
    {
        var pool = Pool() with { Min = 0, Max = 4 };
        Assert.Equal(0, GpuAutoscaler.Desired(pool, 0, 40, TimeSpan.FromMinutes(30)));
        Assert.Equal(1, GpuAutoscaler.Desired(pool, 3, 40, TimeSpan.FromMinutes(30)));
        Assert.Equal(2, GpuAutoscaler.Desired(pool, 30, 40, TimeSpan.FromMinutes(30)));
        Assert.Equal(4, GpuAutoscaler.Desired(pool, 10_000, 40, TimeSpan.FromMinutes(30)));
        Assert.Equal(1, GpuAutoscaler.Desired(pool with { Min = 1 }, 0, 40, TimeSpan.FromMinutes(30)));

        var budget = new GpuBudget(Daily: 10m, Monthly: null);
        Assert.Equal((false, false), GpuAutoscaler.BudgetState(budget, new Spend(7.99m, 0)));
        Assert.Equal((true, false), GpuAutoscaler.BudgetState(budget, new Spend(8m, 0)));
        Assert.Equal((true, true), GpuAutoscaler.BudgetState(budget, new Spend(10m, 0)));
    }
}
