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

    /// <summary>
    /// Whether this node (a control node) runs the platform's own consumers of its domain events
    /// (the webhooks). Default true; every control node may, they compete like any consumers.
    /// </summary>
    public bool RelayEnabled { get; set; } = true;

    /// <summary>Push groups (<c>Fundament:Messaging:Push</c>).</summary>
    public PushOptions Push { get; set; } = new();

    /// <summary>The RabbitMQ transport (<c>Fundament:Messaging:RabbitMq</c>); without its <c>Uri</c>, messages travel through the shared database (the embedded transport).</summary>
    public RabbitMqOptions RabbitMq { get; set; } = new();
}

/// <summary>
/// Section <c>Fundament:Messaging:RabbitMq</c>: messages travel through RabbitMQ quorum queues (one per
/// consumer group) with publisher confirms and manual acks; retries, dead letters, replay and purge
/// stay in the database (ADR 0016, ADR 0018).
/// </summary>
public sealed class RabbitMqOptions
{
    /// <summary>
    /// The broker, <c>amqp://user:password@host:5672/vhost</c> (<c>amqps://</c> for TLS). Setting it
    /// selects the RabbitMQ transport. Keep the password out of files: set it through the environment
    /// (<c>Fundament__Messaging__RabbitMq__Uri</c>) or a secret mount.
    /// </summary>
    public Uri? Uri { get; set; }

    /// <summary>First part of the names of Fundament's exchanges and queues, so several installations can share a virtual host. Default <c>fundament</c>.</summary>
    public string Prefix { get; set; } = "fundament";

    /// <summary>Most deliveries (a single publish, or a whole batch) the broker pushes to one node per consumer group while a pull waits there, leased ones included: twice the waiting pull's <c>max</c>, up to this. Default 200.</summary>
    public int Prefetch { get; set; } = 200;

    /// <summary>
    /// RabbitMQ's <c>x-delivery-limit</c> on every group's queue: a message its consumers' nodes kept
    /// losing (crashing, disconnected) this often is dead-lettered by the broker, and Fundament moves
    /// it to the group's dead letters. Failures a consumer reports count against the group's
    /// <c>maxAttempts</c> instead. Default 20.
    /// </summary>
    public int DeliveryLimit { get; set; } = 20;

    /// <summary>How long a publish may wait for the broker's confirm (reconnecting included) before it answers 503. Default 10s.</summary>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A node stops consuming a group this long after its last pull there, and gives back what it took ahead. Default 5s.</summary>
    public TimeSpan ConsumerIdle { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long an ack or nack arriving at one node waits for the node that holds the lease to answer. Default 10s.</summary>
    public TimeSpan SettleTimeout { get; set; } = TimeSpan.FromSeconds(10);
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
        problems.Require(o.RabbitMq.Uri is null || (o.RabbitMq.Uri.IsAbsoluteUri && o.RabbitMq.Uri.Scheme is "amqp" or "amqps"), o.RabbitMq.Uri, "must be an amqp:// or amqps:// URI.");
        problems.Require(o.RabbitMq.Prefix is { Length: > 0 and <= 40 } && o.RabbitMq.Prefix.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'), o.RabbitMq.Prefix, "must be 1-40 letters, digits, '-', '_' and '.'.");
        problems.Between(o.RabbitMq.Prefetch, 1, 10_000);
        problems.Between(o.RabbitMq.DeliveryLimit, 1, 1000);
        problems.Between(o.RabbitMq.PublishTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        problems.Between(o.RabbitMq.ConsumerIdle, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(10));
        problems.Between(o.RabbitMq.SettleTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        problems.Between(o.Push.Concurrency, 1, 256);
        problems.Between(o.Push.MaxInFlight, 1, 10_000);
        problems.Between(o.Push.Timeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        problems.Between(o.Push.PollInterval, TimeSpan.FromMilliseconds(50), TimeSpan.FromMinutes(1));
    }
}

/// <summary>Section <c>Fundament:Messaging:Push</c>: how control nodes deliver push groups.</summary>
public sealed class PushOptions
{
    /// <summary>Whether this node (a control node) pushes. Default true; several control nodes share the work like consumers.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Messages one push group has in flight from this node at once. Default 16, 1-256.</summary>
    public int Concurrency { get; set; } = 16;

    /// <summary>Pushes in flight on this node, every push group together. Default 256, 1-10000.</summary>
    public int MaxInFlight { get; set; } = 256;

    /// <summary>How long a receiver has to answer one push before it counts as a failed attempt. Default 10s, 1s-5min.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often an idle node looks for due pushes (a publish on the node wakes it at once). Default 1s.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);
}
