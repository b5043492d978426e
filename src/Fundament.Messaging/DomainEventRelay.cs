using System.Text.Json;
using Fundament.Messaging.Storage;
using Fundament.Messaging.Transport;
using Microsoft.Extensions.Hosting;

namespace Fundament.Messaging;

/// <summary>
/// The one path of the platform's domain events: <see cref="BusEventSink"/> publishes each to topic
/// <c>fundament.&lt;event&gt;</c>, and every <see cref="IDomainEventHandler"/> (the webhooks) consumes
/// it as consumer group <c>fundament.&lt;handler&gt;</c> of each event topic, like any other
/// consumer: under leases, at least once, retried with the group's backoff and dead-lettered after its
/// attempts, where <c>GET /api/v1/dead-letters?topic=fundament.media.ready</c> shows it and a replay
/// sends it through again. The groups are created at start-up on every node, before anything is
/// published (a group receives what is published after it exists); control nodes run the handlers.
/// </summary>
internal sealed partial class DomainEventRelay(
    IEnumerable<IDomainEventHandler> handlers, EventTypeCatalog eventTypes, MessageStore store, IMessageTransport transport, PublishSignal signal,
    MessagingMetrics metrics, TimeProvider time, IOptions<MessagingOptions> options, ILogger<DomainEventRelay> logger) : BackgroundService, IStartupTask
{
    /// <summary>The prefix of the platform's own consumer groups: nobody pulls, settles or deletes them through the API.</summary>
    public const string GroupPrefix = "fundament.";

    /// <summary>Messages one pass takes from one group.</summary>
    private const int Batch = 100;

    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);

    /// <summary>The groups as stored (a pull names the stored group exactly, creation time included).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Topic, string Name), GroupDefinition> _stored = new();

    public int Order => 500;

    /// <summary>The relay's groups: every handler on every event type.</summary>
    public IReadOnlyList<(GroupDefinition Group, IDomainEventHandler Handler)> Groups { get; } =
        [.. handlers.SelectMany(h => eventTypes.Definitions.Where(e => h.Events is null || h.Events.Contains(e.Name)).Select(e => (new GroupDefinition
        {
            Topic = BusEventSink.ReservedPrefix + e.Name,
            Name = GroupPrefix + h.Name,
            MaxAttempts = 20,
            BackoffInitialMs = 1_000,
            BackoffMaxMs = 300_000,
            Ordered = 0,
            DeadLetter = 1,
            CreatedAt = 0,
            CreatedBy = null,
        }, h)))];

    /// <summary>Whether a new group may not take <paramref name="name"/> (the platform's prefix).</summary>
    public static bool IsReservedName(string name) => name.StartsWith(GroupPrefix, StringComparison.Ordinal);

    /// <summary>
    /// Whether the platform consumes <paramref name="group"/>: its prefix, on a platform topic, created by nobody.
    /// A tenant's group that took such a name before it was reserved stays the tenant's.
    /// </summary>
    public static bool IsPlatformGroup(GroupDefinition group) =>
        IsReservedName(group.Name) && group.CreatedBy is null && group.Topic.StartsWith(BusEventSink.ReservedPrefix, StringComparison.Ordinal);

    /// <summary>Creates the relay's groups that do not exist yet (idempotent; several replicas may race).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        foreach (var (group, _) in Groups)
        {
            var (outcome, stored) = await store.CreateGroupAsync(group with { CreatedAt = time.GetUtcNow().ToUnixTimeMilliseconds() }, int.MaxValue, cancellationToken);
            if (!IsPlatformGroup(stored!))
            {
                // A tenant made a group of this name before the name was reserved: never consume theirs.
                LogNameTaken(logger, group.Topic, group.Name, stored!.CreatedBy);
                continue;
            }
            _stored[(group.Topic, group.Name)] = stored!;
            try
            {
                await transport.PrepareGroupAsync(stored!, cancellationToken);
            }
            catch (TransportException ex)
            {
                // The broker is away: the transport declares every group's queue when it connects, before it publishes.
                LogNotPrepared(logger, group.Topic, group.Name, ex.Message);
            }
            if (outcome == GroupCreation.Created)
            {
                LogCreated(logger, group.Topic, group.Name);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var handled = 0;
            try
            {
                handled = await PassAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(logger, ex);
            }
            if (handled == 0)
            {
                // A publish on this node wakes the relay at once; other nodes' publishes within a second.
                await signal.WaitAsync(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

    /// <summary>Hands every due event of every relay group to its handler once; returns how many were handled.</summary>
    public async Task<int> PassAsync(CancellationToken cancellationToken)
    {
        var handled = 0;
        foreach (var (wanted, handler) in Groups)
        {
            if (!_stored.TryGetValue((wanted.Topic, wanted.Name), out var group))
            {
                if (await store.FindGroupAsync(wanted.Topic, wanted.Name, cancellationToken) is not { } found || !IsPlatformGroup(found))
                {
                    continue; // the start-up task creates it (or said why it cannot)
                }
                group = _stored[(wanted.Topic, wanted.Name)] = found;
            }
            try
            {
                handled += await RelayAsync(group, handler, cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // This group only: its leases run out and the next pass tries again.
                LogGroupFailed(logger, group.Topic, group.Name, ex);
            }
        }
        return handled;
    }

    private async Task<int> RelayAsync(GroupDefinition group, IDomainEventHandler handler, CancellationToken cancellationToken)
    {
        var pulled = await transport.PullAsync(group, Batch, options.Value.MaxPageBytes, Lease, waiting: false, cancellationToken);
        if (pulled.Messages.Count == 0)
        {
            return 0;
        }
        var done = new List<string>(pulled.Messages.Count);
        try
        {
            foreach (var message in pulled.Messages)
            {
                DomainEvent domainEvent;
                try
                {
                    domainEvent = ToEvent(message);
                }
                catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
                {
                    // Not an event BusEventSink wrote: no retry can help it.
                    LogHandlerFailed(logger, handler.Name, message.Topic, message.Id, message.Attempt, ex);
                    var dead = await transport.NackAsync(group, [message.LeaseId], "not a domain event: " + ex.Message, ex.GetType().FullName, deadLetter: true,
                        retryAfter: null, options.Value.MaxRetryDelay, CancellationToken.None);
                    metrics.Settled(group.Topic, group.Name, dead.DeadLettered, dead.Dropped);
                    continue;
                }
                try
                {
                    await handler.HandleAsync(domainEvent, cancellationToken);
                    done.Add(message.LeaseId);
                }
                catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                {
                    LogHandlerFailed(logger, handler.Name, message.Topic, message.Id, message.Attempt, ex);
                    var outcome = await transport.NackAsync(group, [message.LeaseId], ex.Message, ex.GetType().FullName, deadLetter: false,
                        retryAfter: null, options.Value.MaxRetryDelay, CancellationToken.None);
                    metrics.Settled(group.Topic, group.Name, outcome.DeadLettered, outcome.Dropped);
                }
            }
        }
        finally
        {
            // What was handled is acknowledged even when a later message's settle failed.
            if (done.Count > 0)
            {
                await transport.AckAsync(group, done, CancellationToken.None);
            }
        }
        return done.Count;
    }

    /// <summary>The body <see cref="BusEventSink"/> wrote: <c>{event, audience, at, data}</c>.</summary>
    private static DomainEvent ToEvent(LeasedMessage message)
    {
        var body = message.Body;
        return new DomainEvent(
            message.Id,
            body.GetProperty("event").GetString() ?? throw new JsonException("event is null"),
            body.GetProperty("audience").GetString() ?? throw new JsonException("audience is null"),
            body.GetProperty("at").GetDateTimeOffset(),
            body.GetProperty("data").Clone());
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created consumer group {Group} of topic {Topic} for the platform's own handler")]
    private static partial void LogCreated(ILogger logger, string topic, string group);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Consumer group {Group} of topic {Topic} is stored but the transport could not prepare it yet ({Reason}); it will when it connects")]
    private static partial void LogNotPrepared(ILogger logger, string topic, string group, string reason);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Consumer group {Group} of topic {Topic} was made by {CreatedBy} before the name was the platform's; the platform does not consume it, so its handler gets nothing from this topic. Rename that group (create another, move its consumers, delete it) and restart")]
    private static partial void LogNameTaken(ILogger logger, string topic, string group, string? createdBy);

    [LoggerMessage(Level = LogLevel.Error, Message = "Relaying consumer group {Group} of topic {Topic} failed; the next pass tries again")]
    private static partial void LogGroupFailed(ILogger logger, string topic, string group, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "A pass of the domain-event relay failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Handler {Handler} failed on event {MessageId} of {Topic} (attempt {Attempt}); the bus retries it")]
    private static partial void LogHandlerFailed(ILogger logger, string handler, string topic, string messageId, int attempt, Exception exception);
}
