namespace Fundament.Registry;

/// <summary>Section <c>Fundament:Registry</c>.</summary>
public sealed class RegistryOptions
{
    public const string SectionName = "Fundament:Registry";

    /// <summary>Whether this process runs health checks (control role only). Default true; replicas share the work through leases.</summary>
    public bool MonitorEnabled { get; set; } = true;

    /// <summary>Whether this node (a control node) publishes the registry's domain events from the status history (one node at a time, by lease). Default true.</summary>
    public bool EventsEnabled { get; set; } = true;

    /// <summary>How often the monitor looks for due checks, lapsed TTLs and instances to remove. Default 1s.</summary>
    public TimeSpan MonitorInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>HTTP checks running at once in one process. Default 32.</summary>
    public int MaxConcurrentChecks { get; set; } = 32;

    /// <summary>Shortest check interval or TTL an instance may ask for. Default 1s.</summary>
    public TimeSpan MinCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Removal delay for critical instances that set no deregisterAfter. Default none (kept until deregistered).</summary>
    public TimeSpan? DefaultDeregisterAfter { get; set; }

    /// <summary>Status changes kept per instance. Default 100.</summary>
    public int HistoryPerInstance { get; set; } = 100;
}

internal sealed class RegistryOptionsValidator : SettingsValidator<RegistryOptions>
{
    protected override string Section => RegistryOptions.SectionName;

    protected override void Check(RegistryOptions o, SettingsProblems problems)
    {
        problems.Between(o.MonitorInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1));
        problems.Between(o.MaxConcurrentChecks, 1, 1024);
        problems.AtLeast(o.MinCheckInterval, TimeSpan.FromMilliseconds(100));
        if (o.DefaultDeregisterAfter is { } deregisterAfter)
        {
            problems.AtLeast(deregisterAfter, TimeSpan.FromSeconds(1), nameof(o) + "." + nameof(o.DefaultDeregisterAfter));
        }
        problems.Between(o.HistoryPerInstance, 1, 10_000);
    }
}
