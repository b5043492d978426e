using System.Globalization;

namespace Fundament.Gpu.Placement;

/// <summary>An offer not taken, and why (the decision log shows every one: dstack#2490 hid them).</summary>
public sealed record RejectedOffer(GpuOffer Offer, string Reason);

/// <summary>
/// One placement: the offer launched (or none), every offer rejected with its reason, in the order
/// they were considered, and, when nothing could be launched, why the pool stopped trying.
/// </summary>
public sealed record PlacementDecision(GpuOffer? Chosen, IReadOnlyList<RejectedOffer> Rejected, string? Stopped, decimal ForecastCost);

/// <summary>What a pool has spent so far in the current day and month (UTC).</summary>
public sealed record Spend(decimal Today, decimal ThisMonth);

/// <summary>
/// Chooses where to launch a GPU worker, and fails over when the provider refuses. Pure: offers,
/// the pool, its spend and a launch function in; a decision with every rejected offer out.
/// <list type="bullet">
/// <item>Offers are filtered by the pool's GPU types, memory, count, providers, spot policy and
/// price cap, then by budget: the forecast cost of running the worker for
/// <c>forecast</c> must fit what is left of the daily and the monthly budget.</item>
/// <item>The rest are ranked by effective price (a spot hour counts <see cref="GpuPoolSpec.SpotRisk"/>
/// times its price) and tried in that order, each at most once per placement: a capacity error
/// moves to the next offer, a quota or auth error drops every offer of that provider, a rate limit
/// defers the provider, a transient error this offer. So a placement ends after at most one try
/// per offer; it never loops (SkyPilot#2126).</item>
/// <item>When every offer failed for quota or auth, <see cref="PlacementDecision.Stopped"/> says so:
/// the caller raises an alert and does not try again until the offers or credentials change.</item>
/// </list>
/// </summary>
public static class PlacementPlanner
{
    public const string StoppedQuotaOrAuth = "every provider with a fitting offer refused for quota or credentials";

    /// <summary>The offers the pool could use, best first, and the ones it cannot, with the reason.</summary>
    public static (IReadOnlyList<GpuOffer> Ranked, IReadOnlyList<RejectedOffer> Rejected) Rank(GpuPoolSpec pool, IEnumerable<GpuOffer> offers, Spend spend, TimeSpan forecast)
    {
        var ranked = new List<GpuOffer>();
        var rejected = new List<RejectedOffer>();
        foreach (var offer in offers)
        {
            if (Unfit(pool, offer, spend, forecast) is { } reason)
            {
                rejected.Add(new RejectedOffer(offer, reason));
            }
            else
            {
                ranked.Add(offer);
            }
        }
        ranked.Sort((a, b) => EffectivePrice(pool, a).CompareTo(EffectivePrice(pool, b)) is var c && c != 0 ? c
            : a.Spot.CompareTo(b.Spot) is var s && s != 0 ? s
            : string.CompareOrdinal(a.Provider + "/" + a.Id, b.Provider + "/" + b.Id));
        return (ranked, rejected);
    }

    /// <summary>Price per worker-hour, with spot hours weighed by the pool's spot risk.</summary>
    public static decimal EffectivePrice(GpuPoolSpec pool, GpuOffer offer) => offer.Spot ? offer.PricePerHour * (decimal)pool.SpotRisk : offer.PricePerHour;

    private static string? Unfit(GpuPoolSpec pool, GpuOffer offer, Spend spend, TimeSpan forecast)
    {
        if (!offer.Available)
        {
            return "not available";
        }
        if (!pool.Providers.Permits(offer.Provider))
        {
            return $"provider {offer.Provider} is not allowed for this pool";
        }
        if (pool.Gpu.Types.Count > 0 && !pool.Gpu.Types.Contains(offer.Gpu, StringComparer.OrdinalIgnoreCase))
        {
            return $"GPU {offer.Gpu} is not one of {string.Join(", ", pool.Gpu.Types)}";
        }
        if (offer.VramGb < pool.Gpu.MinVramGb)
        {
            return $"{offer.VramGb.ToString("0.#", CultureInfo.InvariantCulture)} GB of GPU memory, the pool needs {pool.Gpu.MinVramGb.ToString("0.#", CultureInfo.InvariantCulture)}";
        }
        if (offer.Count != pool.Gpu.Count)
        {
            return $"{offer.Count} GPUs, the pool wants {pool.Gpu.Count}";
        }
        if (offer.Spot && !pool.AllowSpot)
        {
            return "spot, and the pool allows on-demand only";
        }
        if (pool.MaxPricePerHour is { } max && offer.PricePerHour > max)
        {
            return $"${offer.PricePerHour.ToString("0.000", CultureInfo.InvariantCulture)}/h is above the pool's maximum of ${max.ToString("0.000", CultureInfo.InvariantCulture)}/h";
        }
        var cost = Forecast(offer, forecast);
        if (pool.Budget.Daily is { } daily && spend.Today + cost > daily)
        {
            return $"forecast ${cost.ToString("0.00", CultureInfo.InvariantCulture)} would exceed the daily budget (${spend.Today.ToString("0.00", CultureInfo.InvariantCulture)} of ${daily.ToString("0.00", CultureInfo.InvariantCulture)} spent)";
        }
        if (pool.Budget.Monthly is { } monthly && spend.ThisMonth + cost > monthly)
        {
            return $"forecast ${cost.ToString("0.00", CultureInfo.InvariantCulture)} would exceed the monthly budget (${spend.ThisMonth.ToString("0.00", CultureInfo.InvariantCulture)} of ${monthly.ToString("0.00", CultureInfo.InvariantCulture)} spent)";
        }
        return null;
    }

    /// <summary>What running <paramref name="offer"/> for <paramref name="forecast"/> costs.</summary>
    public static decimal Forecast(GpuOffer offer, TimeSpan forecast) => decimal.Round(offer.PricePerHour * (decimal)forecast.TotalHours, 4);

    /// <summary>
    /// Tries the ranked offers in order through <paramref name="launch"/> until one starts; returns the
    /// decision with every offer rejected on the way. Each offer is tried at most once.
    /// </summary>
    public static async Task<PlacementDecision> PlaceAsync(
        GpuPoolSpec pool, IEnumerable<GpuOffer> offers, Spend spend, TimeSpan forecast, Func<GpuOffer, CancellationToken, Task> launch, CancellationToken cancellationToken)
    {
        var (ranked, rejected) = Rank(pool, offers, spend, forecast);
        var log = new List<RejectedOffer>(rejected);
        var refused = new Dictionary<string, LaunchFailure>(StringComparer.OrdinalIgnoreCase);
        foreach (var offer in ranked)
        {
            if (refused.TryGetValue(offer.Provider, out var earlier))
            {
                log.Add(new RejectedOffer(offer, earlier == LaunchFailure.RateLimited
                    ? $"provider {offer.Provider} is rate-limiting launches; tried again at the next placement"
                    : $"provider {offer.Provider} refused an earlier offer for {Describe(earlier)}"));
                continue;
            }
            try
            {
                await launch(offer, cancellationToken);
                return new PlacementDecision(offer, log, null, Forecast(offer, forecast));
            }
            catch (GpuLaunchException ex)
            {
                log.Add(new RejectedOffer(offer, $"launch failed ({Describe(ex.Failure)}): {ex.Message}"));
                if (ex.Failure == LaunchFailure.Unknown)
                {
                    // The machine may be running: failing over could launch a second one.
                    return new PlacementDecision(null, log, $"the launch on {offer.Provider} ({offer.Id}) got no answer and may have started a machine; placement stopped instead of failing over: check the provider", 0);
                }
                if (ex.Failure is LaunchFailure.Quota or LaunchFailure.Auth or LaunchFailure.RateLimited)
                {
                    refused[offer.Provider] = ex.Failure;
                }
            }
        }
        // Stopped for good only when every provider that had a fitting offer refused for quota or credentials.
        var providers = ranked.Select(o => o.Provider).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        string stopped = ranked.Count == 0
            ? "no offer fits the pool's constraints and budget"
            : providers.All(p => refused.TryGetValue(p, out var f) && f is LaunchFailure.Quota or LaunchFailure.Auth)
                ? StoppedQuotaOrAuth
                : "every fitting offer failed for capacity, a rate limit or a transient error; the next placement tries again";
        return new PlacementDecision(null, log, stopped, 0);
    }

    private static string Describe(LaunchFailure failure) => failure switch
    {
        LaunchFailure.Capacity => "no capacity",
        LaunchFailure.Quota => "quota",
        LaunchFailure.Auth => "credentials",
        LaunchFailure.RateLimited => "rate limit",
        LaunchFailure.Unknown => "no answer",
        _ => "a transient error",
    };
}

/// <summary>How many workers a pool wants: enough to drain its queue within the target, within min and max, none when idle.</summary>
public static class GpuAutoscaler
{
    /// <param name="queued">Jobs of the pool's types waiting or running.</param>
    /// <param name="jobsPerWorkerHour">What one worker gets through in an hour (measured from finished jobs).</param>
    /// <param name="drainTarget">How soon the queue should be empty.</param>
    public static int Desired(GpuPoolSpec pool, long queued, double jobsPerWorkerHour, TimeSpan drainTarget)
    {
        if (queued <= 0)
        {
            return pool.Min;
        }
        var perWorker = Math.Max(1e-9, jobsPerWorkerHour * drainTarget.TotalHours);
        var wanted = (int)Math.Min(int.MaxValue, Math.Ceiling(queued / perWorker));
        return Math.Clamp(Math.Max(wanted, 1), pool.Min, pool.Max);
    }

    /// <summary>The budget share spent from which the pool's budget alert fires.</summary>
    public const decimal AlertShare = 0.8m;

    /// <summary>Whether spending has reached <see cref="AlertShare"/> of a budget (alert) or all of it (stop every worker).</summary>
    public static (bool Alert, bool Overrun) BudgetState(GpuBudget budget, Spend spend)
    {
        bool Reached(decimal? limit, decimal spent, decimal share) => limit is { } l && spent >= l * share;
        return (Reached(budget.Daily, spend.Today, AlertShare) || Reached(budget.Monthly, spend.ThisMonth, AlertShare),
            Reached(budget.Daily, spend.Today, 1) || Reached(budget.Monthly, spend.ThisMonth, 1));
    }
}
