namespace Fundament.Gpu.Placement;

/// <summary>
/// One way to get GPUs from one provider, normalised: the same fields whatever the provider calls
/// them (Vast.ai's <c>gpu_ram</c> in MB arrives here in GB; RunPod's secure and community clouds are
/// two offers with two prices, never one).
/// </summary>
/// <param name="Provider">runpod, vast, lambda, paperspace, genesis, aws, gcp, azure.</param>
/// <param name="Id">The provider's handle for launching exactly this offer (an ask id, an instance type and region ...).</param>
/// <param name="PricePerHour">US dollars per hour for the whole offer (all its GPUs).</param>
/// <param name="Spot">Interruptible (spot, preemptible, community bid): cheaper, and may be taken away.</param>
public sealed record GpuOffer(
    string Provider, string Id, string Region, string Gpu, int Count, double VramGb, decimal PricePerHour, bool Spot, bool Available, DateTimeOffset ObservedAt);

/// <summary>What a pool needs from a GPU offer.</summary>
/// <param name="Types">Acceptable GPU types (e.g. <c>RTX 4090</c>, <c>A100 80GB</c>); empty: any with enough memory.</param>
public sealed record GpuConstraints(IReadOnlyList<string> Types, double MinVramGb, int Count = 1);

/// <summary>Money a pool may spend; null: no limit on that period.</summary>
public sealed record GpuBudget(decimal? Daily, decimal? Monthly);

/// <param name="Allow">Only these providers, when not empty.</param>
/// <param name="Deny">Never these.</param>
public sealed record ProviderFilter(IReadOnlyList<string> Allow, IReadOnlyList<string> Deny)
{
    public static ProviderFilter Any { get; } = new([], []);

    public bool Permits(string provider) =>
        (Allow.Count == 0 || Allow.Contains(provider, StringComparer.OrdinalIgnoreCase)) && !Deny.Contains(provider, StringComparer.OrdinalIgnoreCase);
}

/// <summary>A pool of GPU workers for some job types: how many, on what, for how much.</summary>
/// <param name="JobTypes">The job types its workers pull (e.g. <c>analysis.caption</c>).</param>
/// <param name="IdleTimeout">A worker with nothing to do this long is terminated (scale to zero when <paramref name="Min"/> is 0).</param>
/// <param name="MaxPricePerHour">No offer above this price per worker-hour.</param>
/// <param name="AllowSpot">Whether interruptible offers may be used.</param>
/// <param name="SpotRisk">How much dearer a spot hour counts than its price when offers are ranked: the work a preemption throws away and the time to replace the worker. Default 1.25.</param>
public sealed record GpuPoolSpec(
    string Name, IReadOnlyList<string> JobTypes, GpuConstraints Gpu, int Min, int Max, TimeSpan IdleTimeout,
    decimal? MaxPricePerHour, GpuBudget Budget, ProviderFilter Providers, bool AllowSpot = true, double SpotRisk = 1.25);

/// <summary>What a provider's refusal means for the next step.</summary>
public enum LaunchFailure
{
    /// <summary>No machines of this offer now (Lambda's <c>insufficient-capacity</c>, a Vast ask already taken): try the next offer.</summary>
    Capacity,

    /// <summary>The account may not have more (a quota, a spending limit): no offer of this provider will work.</summary>
    Quota,

    /// <summary>The credentials are refused: no offer of this provider will work until an operator acts.</summary>
    Auth,

    /// <summary>Too many requests (Lambda allows one launch per 12 s): this provider later, others now.</summary>
    RateLimited,

    /// <summary>A network error or a 5xx: this offer later.</summary>
    Transient,

    /// <summary>
    /// The launch request got no answer (a timeout): the machine may be running. The placement stops
    /// rather than fail over and perhaps launch a second one; an operator checks the provider.
    /// </summary>
    Unknown,
}

/// <summary>A launch refused by a provider, classified.</summary>
public sealed class GpuLaunchException(LaunchFailure failure, string message, Exception? inner = null) : Exception(message, inner)
{
    public LaunchFailure Failure { get; } = failure;
}
