using Fundament.Gpu.Placement;

namespace Fundament.Gpu.Providers;

/// <summary>What a launched machine is doing, as far as its provider says.</summary>
public enum GpuInstanceState
{
    Starting,
    Running,

    /// <summary>Taken away by the provider (spot reclaimed, a bid outbid): the worker's jobs go back on the queue.</summary>
    Preempted,
    Terminated,
    Failed,
    Unknown,
}

/// <param name="Name">The instance's name at the provider (the pool and a sequence number).</param>
/// <param name="StartupScript">Runs on boot: starts a Fundament GPU worker that registers back and pulls its pool's job types.</param>
/// <param name="MaxPricePerHour">The most to pay (a bid, for interruptible offers).</param>
public sealed record GpuLaunchRequest(string Name, string StartupScript, decimal? MaxPricePerHour);

/// <summary>
/// One GPU cloud. Every adapter lists offers normalised to <see cref="GpuOffer"/>, launches one,
/// reads its state and terminates it, and turns the provider's refusals into
/// <see cref="GpuLaunchException"/> with a <see cref="LaunchFailure"/> the planner acts on.
/// </summary>
public interface IGpuProvider
{
    string Name { get; }

    Task<IReadOnlyList<GpuOffer>> OffersAsync(GpuConstraints constraints, CancellationToken cancellationToken);

    /// <summary>Returns the provider's instance id. Throws <see cref="GpuLaunchException"/> when refused.</summary>
    Task<string> LaunchAsync(GpuOffer offer, GpuLaunchRequest request, CancellationToken cancellationToken);

    Task<GpuInstanceState> StatusAsync(string instanceId, CancellationToken cancellationToken);

    /// <summary>Idempotent: an instance already gone is not an error.</summary>
    Task TerminateAsync(string instanceId, CancellationToken cancellationToken);
}

/// <summary>How an adapter reaches its provider: the base URL (configurable, so tests and proxies can stand in) and the API key, read from the vault when needed.</summary>
public sealed record GpuProviderConnection(Uri BaseUrl, Func<CancellationToken, Task<string>> ApiKey);
