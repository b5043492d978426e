// A week of queued GPU analysis work, placed three ways on the same generated traces:
//   always-on   one on-demand provider, enough workers for the peak, running all week;
//   cheapest    scale with the queue, always the cheapest offer by list price, no failover
//               (a capacity error means "try the same offer again next minute");
//   fundament   scale with the queue, PlacementPlanner's ranking (spot weighed by its risk) and failover,
//               warm workers kept for the idle timeout, preempted jobs requeued.
// Same seeds, same arrivals, same outages for all three. Usage: GpuSim [seeds] [days]
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
        $"| {strategy} | {seed} | {r.Cost:0.00} | {r.Jobs} | {r.WithinSlo:P1} | {r.Completed:P1} | {r.P50:0} | {r.P95:0} | {r.WorkerHours:0} | {r.Preempted} | {r.LaunchFailures} |"));
}
Console.WriteLine();
Console.WriteLine("| strategy | mean cost $ | done ≤ 60 min | done by end | p95 min | cost vs always-on |");
Console.WriteLine("|---|---|---|---|---|---|");
var alwaysOn = results.Where(r => r.Strategy == "always-on").Average(r => (double)r.R.Cost);
foreach (var group in results.GroupBy(r => r.Strategy))
{
    var cost = group.Average(r => (double)r.R.Cost);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {group.Key} | {cost:0.00} | {group.Average(r => r.R.WithinSlo):P1} | {group.Average(r => r.R.Completed):P1} | {group.Average(r => r.R.P95):0} | {cost / alwaysOn:0.00}x ({alwaysOn / cost:0.0}x cheaper) |"));
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
    /// Offers of 24 GB GPUs at list prices seen in December 2026 (per GPU-hour): Vast.ai community
    /// spot, RunPod community and secure cloud, Lambda on-demand (often out of capacity), AWS g5 spot
    /// and on-demand. Spot prices walk ±3% an hour within ±30% of the base; each offer has capacity
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
            Trace("aws", "g5.xlarge-spot", "A10G", 0.45m, spot: true, outagePerHour: 0.03, preempt: 0.05, phantom: 0.05),
            Trace("aws", "g5.xlarge", "A10G", 1.006m, spot: false, outagePerHour: 0.005, preempt: 0, phantom: 0.01),
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
        public double BusyUntil { get; set; }
        public (int Arrived, int Service)? Job { get; set; }
        public int IdleSince { get; set; }
    }

    private readonly GpuPoolSpec _pool = new(
        "analysis", ["analysis.caption", "analysis.fusion"], new GpuConstraints([], 24), Min: 0, Max: 6, IdleTimeout,
        MaxPricePerHour: 1.5m, Budget: new GpuBudget(Daily: 60m, Monthly: null), ProviderFilter.Any);

    /// <summary>Whether a launch the listing allows is refused anyway: a stream of its own, seeded alike for both strategies that launch.</summary>
    private readonly Random _launches = new(world.Seed * 104729);

    public Result Run()
    {
        // The stream of randomness for preemptions is the strategy's own, so no strategy changes another's outages or arrivals.
        var random = new Random(world.Seed * 7919 + strategy.Length);
        var queue = new Queue<(int Arrived, int Service)>();
        var workers = new List<Worker>();
        var latencies = new List<double>();
        decimal cost = 0;
        var spentToday = 0m;
        double workerMinutes = 0;
        int preempted = 0, launchFailures = 0, next = 0;
        if (strategy == "always-on")
        {
            // Sized for the peak: 75 jobs an hour at 90 s is ~1.9 workers, so two, on the cheapest on-demand offer.
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
                if (worker.Trace.PreemptPerHour > 0 && random.NextDouble() < worker.Trace.PreemptPerHour / 60)
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
                    workers.Add(new Worker { Trace = launched, ReadyAt = minute + BootMinutes, IdleSince = minute + BootMinutes });
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
        latencies.Sort();
        var jobs = world.Arrivals.Count;
        double Percentile(double p) => latencies.Count == 0 ? double.NaN : latencies[(int)Math.Min(latencies.Count - 1, Math.Floor(p * latencies.Count))];
        return new Result(decimal.Round(cost, 2), jobs, latencies.Count(l => l <= 60) / (double)jobs, latencies.Count / (double)jobs,
            Percentile(0.5), Percentile(0.95), workerMinutes / 60, preempted, launchFailures);
    }

    /// <summary>The cheapest list price, always; a refusal means waiting for the same offer.</summary>
    private OfferTrace? LaunchCheapest(int minute, ref int failures)
    {
        var cheapest = world.Offers.OrderBy(o => o.Price(minute)).First();
        if (!cheapest.Available(minute) || _launches.NextDouble() < cheapest.PhantomRate)
        {
            failures++;
            return null;
        }
        return cheapest;
    }

    /// <summary>Fundament's placement: offers as last observed (refreshed every 5 minutes), ranked, tried in order with failover.</summary>
    private OfferTrace? LaunchPlanned(int minute, decimal spentToday, ref int failures)
    {
        var observedAt = minute - minute % 5;
        var offers = world.Offers.Select(o => o.Offer with { PricePerHour = o.Price(observedAt), Available = o.Available(observedAt) }).ToList();
        var traces = world.Offers.ToDictionary(o => o.Offer.Id);
        OfferTrace? chosen = null;
        var decision = PlacementPlanner.PlaceAsync(_pool, offers, new Spend(spentToday, 0), TimeSpan.FromHours(1), (offer, _) =>
        {
            if (!traces[offer.Id].Available(minute) || _launches.NextDouble() < traces[offer.Id].PhantomRate)
            {
                throw new GpuLaunchException(LaunchFailure.Capacity, "insufficient-capacity");
            }
            chosen = traces[offer.Id];
            return Task.CompletedTask;
        }, CancellationToken.None).GetAwaiter().GetResult();
        failures += decision.Rejected.Count(r => r.Reason.StartsWith("launch failed", StringComparison.Ordinal));
        return chosen;
    }
}
