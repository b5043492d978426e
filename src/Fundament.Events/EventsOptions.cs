namespace Fundament.Events;

/// <summary>Section <c>Fundament:Events</c>.</summary>
public sealed class EventsOptions
{
    public const string SectionName = "Fundament:Events";

    /// <summary>Most events one append (all its streams together) may carry. Default 500.</summary>
    public int MaxEventsPerAppend { get; set; } = 500;

    /// <summary>Most streams one atomic multi-stream append may touch. Default 20.</summary>
    public int MaxStreamsPerAppend { get; set; } = 20;

    /// <summary>Largest <c>data</c> plus <c>metadata</c> of one event, in bytes of JSON text. Default 65536.</summary>
    public int MaxEventBytes { get; set; } = 64 * 1024;

    /// <summary>Most events one read returns. Default 1000.</summary>
    public int MaxReadCount { get; set; } = 1000;

    /// <summary>Largest snapshot, in bytes of JSON text (its request must also fit <c>Fundament:MaxRequestBodyBytes</c>). Default 512 KiB.</summary>
    public int MaxSnapshotBytes { get; set; } = 512 * 1024;

    /// <summary>Most upcast steps (schema versions) one event type may have. Default 100.</summary>
    public int MaxUpcastSteps { get; set; } = 100;

    /// <summary>Most stored events one upcast dry run looks at; beyond it the result says it is not complete. Default 1,000,000.</summary>
    public long MaxDryRunEvents { get; set; } = 1_000_000;

    /// <summary>Most subscriptions one principal may create. Default 100.</summary>
    public int MaxSubscriptionsPerPrincipal { get; set; } = 100;

    /// <summary>Most events one competing subscription has leased or waiting for a retry at once; a pull beyond it gets fewer. Default 10000.</summary>
    public int MaxInFlightPerSubscription { get; set; } = 10_000;

    /// <summary>Lease of a pulled event when the pull names none. Default 30s.</summary>
    public TimeSpan DefaultLease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest lease a pull may ask for. Default 10 minutes.</summary>
    public TimeSpan MaxLease { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Longest a pull may wait for events (<c>wait</c>). Default 30s.</summary>
    public TimeSpan MaxPullWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often a waiting pull looks for events appended on other nodes (appends on its own node wake it at once). Default 250ms.
    /// </summary>
    public TimeSpan PullPollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>First retry delay after a nack; it doubles per attempt up to <see cref="RetryMax"/>. Default 1s.</summary>
    public TimeSpan RetryBase { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest retry delay after a nack. Default 5 minutes.</summary>
    public TimeSpan RetryMax { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often subscription lag is measured for the metrics. Default 15s.</summary>
    public TimeSpan LagInterval { get; set; } = TimeSpan.FromSeconds(15);
}

internal sealed class EventsOptionsValidator : SettingsValidator<EventsOptions>
{
    protected override string Section => EventsOptions.SectionName;

    protected override void Check(EventsOptions o, SettingsProblems problems)
    {
        problems.Between(o.MaxEventsPerAppend, 1, 10_000);
        problems.Between(o.MaxStreamsPerAppend, 1, 100);
        problems.Between(o.MaxEventBytes, 256, 16 << 20);
        problems.Between(o.MaxReadCount, 1, 10_000);
        problems.Between(o.MaxSnapshotBytes, 256, 64 << 20);
        problems.Between(o.MaxUpcastSteps, 1, 10_000);
        problems.Between(o.MaxDryRunEvents, 1, 1_000_000_000);
        problems.Between(o.MaxSubscriptionsPerPrincipal, 1, 100_000);
        problems.Between(o.MaxInFlightPerSubscription, 1, 1_000_000);
        problems.Between(o.DefaultLease, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        problems.Between(o.MaxLease, TimeSpan.FromSeconds(1), TimeSpan.FromHours(12));
        problems.Between(o.MaxPullWait, TimeSpan.Zero, TimeSpan.FromMinutes(5));
        problems.Between(o.PullPollInterval, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(30));
        problems.Between(o.RetryBase, TimeSpan.Zero, TimeSpan.FromHours(1));
        problems.Between(o.RetryMax, TimeSpan.Zero, TimeSpan.FromDays(1));
        problems.Between(o.LagInterval, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        problems.Require(o.DefaultLease <= o.MaxLease, o.DefaultLease, "must not be above MaxLease.");
    }
}
