namespace Fundament.Messaging;

/// <summary>Section <c>Fundament:Messaging</c>.</summary>
public sealed class MessagingOptions
{
    public const string SectionName = "Fundament:Messaging";

    /// <summary>Largest message body plus headers, in bytes of JSON text. Default 256 KiB.</summary>
    public int MaxMessageBytes { get; set; } = 256 * 1024;

    /// <summary>
    /// How long a message id is remembered after it was published (and for as long as any group still
    /// holds its message, however long that is): a re-send within it is a duplicate. Default 10 minutes.
    /// </summary>
    public TimeSpan DedupeWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Messages one group may hold (ready, leased and dead letters). Once a group of a topic is over
    /// it, publishing to the topic answers 429 until it drains: a stalled consumer cannot fill the
    /// disk. Measured every <see cref="MeasureInterval"/>, so it may be overshot by what arrives in
    /// between. Default 1,000,000.
    /// </summary>
    public long MaxMessagesPerGroup { get; set; } = 1_000_000;

    /// <summary>Most messages one batch publish (<c>POST .../messages/batch</c>) may carry. Default 500.</summary>
    public int MaxBatchMessages { get; set; } = 500;

    /// <summary>Most bytes of bodies and headers one pull or one page of dead letters returns (always at least one message). Default 4 MiB.</summary>
    public long MaxPageBytes { get; set; } = 4 << 20;

    /// <summary>Most consumer groups one principal may create. Default 100.</summary>
    public int MaxGroupsPerPrincipal { get; set; } = 100;

    /// <summary>Lease of a pulled message when the pull names none. Default 30s.</summary>
    public TimeSpan DefaultLease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest lease a pull may ask for. Default 10 minutes.</summary>
    public TimeSpan MaxLease { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Longest a pull may wait for messages (<c>wait</c>). Default 30s.</summary>
    public TimeSpan MaxPullWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a waiting pull looks for messages published on other nodes (publishes on its own node wake it at once). Default 250ms.</summary>
    public TimeSpan PullPollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Longest retry delay a nack's <c>retryAfter</c> or a group's backoff may ask for. Default 1 hour.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often backlogs and dead letters are measured (metrics, the publish limit) and consumed messages past the dedupe window removed. Default 15s.</summary>
    public TimeSpan MeasureInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The <c>dead_letters_growing</c> alert condition holds for a group that dead-lettered a message within this window. Default 15 minutes.</summary>
    public TimeSpan DeadLetterAlertWindow { get; set; } = TimeSpan.FromMinutes(15);
}

internal sealed class MessagingOptionsValidator : SettingsValidator<MessagingOptions>
{
    protected override string Section => MessagingOptions.SectionName;

    protected override void Check(MessagingOptions o, SettingsProblems problems)
    {
        problems.Between(o.MaxMessageBytes, 256, 16 << 20);
        problems.Between(o.DedupeWindow, TimeSpan.Zero, TimeSpan.FromDays(7));
        problems.Between(o.MaxMessagesPerGroup, 1, 1_000_000_000);
        problems.Between(o.MaxPageBytes, 1024, 1L << 30);
        problems.Between(o.MaxBatchMessages, 1, 10_000);
        problems.Between(o.MaxGroupsPerPrincipal, 1, 100_000);
        problems.Between(o.DefaultLease, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        problems.Between(o.MaxLease, TimeSpan.FromSeconds(1), TimeSpan.FromHours(12));
        problems.Between(o.MaxPullWait, TimeSpan.Zero, TimeSpan.FromMinutes(5));
        problems.Between(o.PullPollInterval, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(30));
        problems.Between(o.MaxRetryDelay, TimeSpan.Zero, TimeSpan.FromDays(1));
        problems.Between(o.MeasureInterval, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        problems.Between(o.DeadLetterAlertWindow, TimeSpan.FromMinutes(1), TimeSpan.FromDays(7));
        problems.Require(o.DefaultLease <= o.MaxLease, o.DefaultLease, "must not be above MaxLease.");
    }
}
