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
    }
}
