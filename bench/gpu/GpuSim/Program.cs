// A week of queued GPU analysis work, placed three ways on the same generated traces:
//   always-on   one on-demand provider, enough workers for the peak, running all week;
//   cheapest    scale with the queue, always the cheapest offer listed as available, no failover
//               (a refused launch means "try the cheapest listed offer again next minute");
//   fundament   scale with the queue, PlacementPlanner's ranking (spot weighed by its risk) and failover,
//               warm workers kept for the idle timeout, preempted jobs requeued.
// Same seeds, same arrivals, same outages for all three; whether a launch is refused and when a spot
// machine is reclaimed are functions of (seed, offer, minute, launch number), so the same launch meets
// the same fate under every strategy. Only providers Fundament has adapters for are in it.
// Usage: GpuSim [seeds] [days]
using System.Globalization;
using Fundament.Gpu.Placement;

var seeds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
var days = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 7;
var results = new List<(string Strategy, int Seed, Result R)>();
for (var seed = 1; seed <= seeds; seed++)
{
    var world = World.Generate(seed, days);
    foreach (var strategy in new[] { "always-on", "cheapest", "fundament" })
    {
        results.Add((strategy, seed, new Simulation(world, strategy).Run()));
    }
}

Console.WriteLine($"| strategy | seed | cost $ | jobs | done ≤ 60 min | done by end | p50 min | p95 min | worker-h | preempted | launch failures |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
foreach (var (strategy, seed, r) in results)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {strategy} | {seed} | {r.Cost:0.00} | {r.Jobs} | {r.WithinSlo:P1} | {r.Completed:P1} | {Minutes(r.P50)} | {Minutes(r.P95)} | {r.WorkerHours:0} | {r.Preempted} | {r.LaunchFailures} |"));
}
Console.WriteLine();
Console.WriteLine("| strategy | mean cost $ | done ≤ 60 min | done by end | p95 min | cost vs always-on |");
Console.WriteLine("|---|---|---|---|---|---|");
var alwaysOn = results.Where(r => r.Strategy == "always-on").Average(r => (double)r.R.Cost);
foreach (var group in results.GroupBy(r => r.Strategy))
{
    var cost = group.Average(r => (double)r.R.Cost);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {group.Key} | {cost:0.00} | {group.Average(r => r.R.WithinSlo):P1} | {group.Average(r => r.R.Completed):P1} | {Minutes(group.Max(r => r.R.P95))} | {cost / alwaysOn:0.00}x ({alwaysOn / cost:0.0}x cheaper) |"));
}

static string Minutes(double value) => double.IsPositiveInfinity(value) ? "∞" : value.ToString("0", CultureInfo.InvariantCulture);

/// <summary>A uniform number in [0, 1) that depends only on its inputs: the same launch gets the same fate under every strategy.</summary>
internal static class Fate
{
    public static double Uniform(int seed, string offer, int minute, int salt)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes($"{seed}|{offer}|{minute}|{salt}"))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }
        hash ^= hash >> 33;
        hash *= 0xff51afd7ed558ccdUL;
        hash ^= hash >> 33;
        return (hash >> 11) * (1.0 / (1UL << 53));
    }
}

/// <summary>One offer's life over the week: its price and whether it can be launched, minute by minute, and its preemption hazard.</summary>
internal sealed class OfferTrace(GpuOffer offer, decimal[] hourlyPrice, bool[] hourlyAvailable, double preemptPerHour, double phantomRate)
{
    public GpuOffer Offer { get; } = offer;
    public double PreemptPerHour { get; } = preemptPerHour;

    /// <summary>Listed as available, refused at launch anyway (Lambda's insufficient-capacity, a Vast ask taken meanwhile).</summary>
    public double PhantomRate { get; } = phantomRate;
    public decimal Price(int minute) => hourlyPrice[Math.Min(minute / 60, hourlyPrice.Length - 1)];
    public bool Available(int minute) => hourlyAvailable[Math.Min(minute / 60, hourlyAvailable.Length - 1)];
}

internal sealed class World
{
    public required IReadOnlyList<OfferTrace> Offers { get; init; }
    public required IReadOnlyList<(int Minute, int ServiceSeconds)> Arrivals { get; init; }
    public required int Minutes { get; init; }
    public required int Seed { get; init; }

    /// <summary>
    /// Offers of 24 GB GPUs at list prices seen in December 2026 (per GPU-hour) from the providers
    /// Fundament has adapters for: Vast.ai interruptible, RunPod community (spot) and secure cloud,
    /// Lambda on-demand (often out of capacity). Spot prices walk ±3% an hour within ±30% of the base; each offer has capacity
    /// outages of 1-6 hours (Lambda most often); spot offers are preempted at a per-hour hazard.
    /// Work: analysis jobs of 60-120 s of GPU time, arriving at 25 an hour on average, three times
    /// that in European office hours, a fifth of it at night, half on weekends.
    /// </summary>
    public static World Generate(int seed, int days)
    {
        var random = new Random(seed);
        var hours = days * 24;
        var t0 = new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero);
        OfferTrace Trace(string provider, string id, string gpu, decimal basePrice, bool spot, double outagePerHour, double preempt, double phantom)
        {
            var prices = new decimal[hours];
            var available = new bool[hours];
            var price = (double)basePrice;
            var down = 0;
            for (var h = 0; h < hours; h++)
            {
                if (spot)
                {
                    price = Math.Clamp(price * (1 + (random.NextDouble() - 0.5) * 0.06), (double)basePrice * 0.7, (double)basePrice * 1.3);
                }
                prices[h] = decimal.Round((decimal)price, 3);
                if (down == 0 && random.NextDouble() < outagePerHour)
                {
                    down = 1 + random.Next(6);
                }
                available[h] = down == 0;
                down = Math.Max(0, down - 1);
            }
            return new OfferTrace(new GpuOffer(provider, id, "eu", gpu, 1, 24, basePrice, spot, true, t0), prices, available, preempt, phantom);
        }
        var offers = new List<OfferTrace>
        {
            Trace("vast", "ask-4090", "RTX 4090", 0.34m, spot: true, outagePerHour: 0.06, preempt: 0.04, phantom: 0.15),
            Trace("runpod", "community-4090", "RTX 4090", 0.44m, spot: true, outagePerHour: 0.04, preempt: 0.02, phantom: 0.10),
            Trace("runpod", "secure-4090", "RTX 4090", 0.69m, spot: false, outagePerHour: 0.02, preempt: 0, phantom: 0.05),
            Trace("lambda", "gpu_1x_a10", "A10", 0.75m, spot: false, outagePerHour: 0.12, preempt: 0, phantom: 0.30),
        };
        var arrivals = new List<(int, int)>();
        for (var minute = 0; minute < hours * 60; minute++)
        {
            var at = t0.AddMinutes(minute);
            var office = at.Hour is >= 8 and < 18 ? 3.0 : at.Hour is >= 23 or < 6 ? 0.2 : 1.0;
            var weekend = at.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday ? 0.5 : 1.0;
            var rate = 25.0 / 1.55 * office * weekend / 60; // 1.55: the weekday mean of the office factor
            for (var k = Poisson(random, rate); k > 0; k--)
            {
                arrivals.Add((minute, 60 + random.Next(61)));
            }
        }
        return new World { Offers = offers, Arrivals = arrivals, Minutes = hours * 60, Seed = seed };
    }

    private static int Poisson(Random random, double lambda)
    {
        var l = Math.Exp(-lambda);
        var k = 0;
        var p = 1.0;
        do
        {
            k++;
            p *= random.NextDouble();
        }
        while (p > l);
        return k - 1;
    }
}

internal sealed record Result(decimal Cost, int Jobs, double WithinSlo, double Completed, double P50, double P95, double WorkerHours, int Preempted, int LaunchFailures);

internal sealed class Simulation(World world, string strategy)
{
    private const int BootMinutes = 4;
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);
    private const double JobsPerWorkerHour = 40; // 90 s a job on average

    private sealed class Worker
    {
        public required OfferTrace Trace { get; init; }
        public int ReadyAt { get; init; }

        /// <summary>When the provider reclaims it (spot), decided at launch from the launch's identity.</summary>
        public int PreemptAt { get; init; } = int.MaxValue;
        public double BusyUntil { get; set; }
        public (int Arrived, int Service)? Job { get; set; }
        public int IdleSince { get; set; }
    }

    private readonly GpuPoolSpec _pool = new(
        "analysis", ["analysis.caption", "analysis.fusion"], new GpuConstraints([], 24), Min: 0, Max: 6, IdleTimeout,
        MaxPricePerHour: 1.5m, Budget: new GpuBudget(Daily: 60m, Monthly: null), ProviderFilter.Any);

    /// <summary>Launches per offer and minute so far, so each launch has an identity (offer, minute, number).</summary>
    private readonly Dictionary<(string, int), int> _launchNumbers = [];

    private int NextLaunchNumber(OfferTrace trace, int minute)
    {
        var key = (trace.Offer.Id, minute);
        var n = _launchNumbers.GetValueOrDefault(key);
        _launchNumbers[key] = n + 1;
        return n;
    }

    /// <summary>Whether this launch is refused although listed (the same answer for the same launch under every strategy).</summary>
    private bool Refused(OfferTrace trace, int minute, int number) =>
        !trace.Available(minute) || Fate.Uniform(world.Seed, trace.Offer.Id, minute, 2 * number) < trace.PhantomRate;

    /// <summary>When a spot machine launched now is reclaimed: exponential with the offer's hazard, from the launch's identity.</summary>
    private int PreemptAt(OfferTrace trace, int minute, int number)
    {
        if (trace.PreemptPerHour <= 0)
        {
            return int.MaxValue;
        }
        var u = Fate.Uniform(world.Seed, trace.Offer.Id, minute, 2 * number + 1);
        var minutes = -Math.Log(1 - u) / (trace.PreemptPerHour / 60);
        return (int)Math.Min(int.MaxValue - 1, minute + minutes);
    }

    public Result Run()
    {
        var queue = new Queue<(int Arrived, int Service)>();
        var workers = new List<Worker>();
        var latencies = new List<double>();
        decimal cost = 0;
        var spentToday = 0m;
        double workerMinutes = 0;
        int preempted = 0, launchFailures = 0, next = 0;
        if (strategy == "always-on")
        {
            // Sized for the peak: about 48 jobs an hour at 90 s is 1.2 worker-hours an hour, so two, on the cheapest on-demand offer.
            var onDemand = world.Offers.Where(o => !o.Offer.Spot).OrderBy(o => o.Offer.PricePerHour).First();
            for (var i = 0; i < 2; i++)
            {
                workers.Add(new Worker { Trace = onDemand, ReadyAt = BootMinutes });
            }
        }
        for (var minute = 0; minute < world.Minutes; minute++)
        {
            if (minute % 1440 == 0)
            {
                spentToday = 0;
            }
            while (next < world.Arrivals.Count && world.Arrivals[next].Minute == minute)
            {
                queue.Enqueue((minute, world.Arrivals[next].ServiceSeconds));
                next++;
            }
            // Spot preemption: the worker is gone, its job back on the queue (a lost heartbeat, then requeued).
            foreach (var worker in workers.ToList())
            {
                if (minute >= worker.PreemptAt)
                {
                    preempted++;
                    if (worker.Job is { } lost)
                    {
                        queue = new Queue<(int, int)>(new[] { lost }.Concat(queue));
                    }
                    workers.Remove(worker);
                }
            }
            // Work: a ready worker finishes its job and takes the next (several short jobs fit in a minute).
            foreach (var worker in workers.Where(w => w.ReadyAt <= minute))
            {
                var clock = Math.Max(worker.BusyUntil, minute);
                while (true)
                {
                    if (worker.Job is { } job && worker.BusyUntil <= minute + 1)
                    {
                        latencies.Add(worker.BusyUntil - job.Arrived);
                        worker.Job = null;
                        worker.IdleSince = minute;
                        clock = worker.BusyUntil;
                    }
                    if (worker.Job is null && queue.Count > 0 && clock < minute + 1)
                    {
                        var taken = queue.Dequeue();
                        worker.Job = taken;
                        worker.BusyUntil = clock + taken.Service / 60.0;
                        continue;
                    }
                    break;
                }
            }
            if (strategy != "always-on")
            {
                var waiting = queue.Count + workers.Count(w => w.Job is not null);
                var desired = GpuAutoscaler.Desired(_pool, waiting, JobsPerWorkerHour, TimeSpan.FromMinutes(30));
                // Warm first: idle workers stay until their idle timeout, then go (scale to zero).
                foreach (var idle in workers.Where(w => w.Job is null && w.ReadyAt <= minute && minute - Math.Max(w.IdleSince, w.ReadyAt) >= IdleTimeout.TotalMinutes).ToList())
                {
                    if (workers.Count > desired)
                    {
                        workers.Remove(idle);
                    }
                }
                var (alert, overrun) = GpuAutoscaler.BudgetState(_pool.Budget, new Spend(spentToday, 0));
                _ = alert;
                while (!overrun && workers.Count < desired)
                {
                    var launched = strategy == "cheapest" ? LaunchCheapest(minute, ref launchFailures) : LaunchPlanned(minute, spentToday, ref launchFailures);
                    if (launched is null)
                    {
                        break;
                    }
                    workers.Add(new Worker { Trace = launched.Value.Trace, ReadyAt = minute + BootMinutes, IdleSince = minute + BootMinutes, PreemptAt = launched.Value.PreemptAt });
                }
            }
            foreach (var worker in workers)
            {
                var minuteCost = worker.Trace.Price(minute) / 60;
                cost += minuteCost;
                spentToday += minuteCost;
                workerMinutes++;
            }
        }
        var jobs = world.Arrivals.Count;
        // Jobs never finished count as waiting for ever, so a strategy cannot look fast by leaving work undone.
        var all = latencies.Concat(Enumerable.Repeat(double.PositiveInfinity, jobs - latencies.Count)).Order().ToList();
        double Percentile(double p) => all.Count == 0 ? double.NaN : all[(int)Math.Min(all.Count - 1, Math.Floor(p * all.Count))];
        return new Result(decimal.Round(cost, 2), jobs, latencies.Count(l => l <= 60) / (double)jobs, latencies.Count / (double)jobs,
            Percentile(0.5), Percentile(0.95), workerMinutes / 60, preempted, launchFailures);
    }

    /// <summary>The cheapest offer listed as available (observed like Fundament's, every 5 minutes); a refusal means trying it again next minute.</summary>
    private (OfferTrace Trace, int PreemptAt)? LaunchCheapest(int minute, ref int failures)
    {
        var observedAt = minute - minute % 5;
        var cheapest = world.Offers.Where(o => o.Available(observedAt)).OrderBy(o => o.Price(observedAt)).FirstOrDefault();
        if (cheapest is null)
        {
            return null;
        }
        var number = NextLaunchNumber(cheapest, minute);
        if (Refused(cheapest, minute, number))
        {
            failures++;
            return null;
        }
        return (cheapest, PreemptAt(cheapest, minute, number));
    }

    /// <summary>Fundament's placement: offers as last observed (refreshed every 5 minutes), ranked, tried in order with failover.</summary>
    private (OfferTrace Trace, int PreemptAt)? LaunchPlanned(int minute, decimal spentToday, ref int failures)
    {
        var observedAt = minute - minute % 5;
        var offers = world.Offers.Select(o => o.Offer with { PricePerHour = o.Price(observedAt), Available = o.Available(observedAt) }).ToList();
        var traces = world.Offers.ToDictionary(o => o.Offer.Id);
        (OfferTrace Trace, int PreemptAt)? chosen = null;
        var decision = PlacementPlanner.PlaceAsync(_pool, offers, new Spend(spentToday, 0), TimeSpan.FromHours(1), (offer, _) =>
        {
            var trace = traces[offer.Id];
            var number = NextLaunchNumber(trace, minute);
            if (Refused(trace, minute, number))
            {
                throw new GpuLaunchException(LaunchFailure.Capacity, "insufficient-capacity");
            }
            chosen = (trace, PreemptAt(trace, minute, number));
            return Task.CompletedTask;
        }, CancellationToken.None).GetAwaiter().GetResult();
        failures += decision.Rejected.Count(r => r.Reason.StartsWith("launch failed", StringComparison.Ordinal));
        return chosen;
    }
}
