using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Fundament.Messaging.Storage;
using Microsoft.Extensions.Hosting;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Fundament.Messaging.Transport.RabbitMq;

/// <summary>
/// The RabbitMQ transport (ADR 0018). Topology: a direct exchange <c>{prefix}.topics</c> routes a
/// publish by its topic to one quorum queue per consumer group (<c>{prefix}.group.{topic}/{group}</c>,
/// <c>x-delivery-limit</c>, dead-lettered at least once to <c>{prefix}.dead-letters</c>,
/// <c>x-max-length</c> with <c>reject-publish</c>). A publish is one persistent AMQP message (a batch
/// too: all or nothing) confirmed by the broker before the 202.
/// <para>
/// A node consumes a group's queue while pulls for it arrive there, and leases the messages to its
/// pullers; the delivery stays unacked on the node's channel until its messages are settled. An ack
/// acks it. Anything else (a nack, a lease that ran out, a node that stops consuming) hands the
/// message to the database (<see cref="MessageStore.AdoptAsync"/>) and then acks it in RabbitMQ:
/// retries with backoff, dead letters, replay and purge are the embedded transport's, and pulls serve
/// the database's due rows first. A lease id names the node that holds it
/// (<c>r.{node}.{random}</c>); an ack or nack arriving at another node is forwarded to it through
/// its control queue (<c>{prefix}.node.{node}</c>), and a lease of a node that is gone is stale: its
/// channel closed, so the broker hands the message out again.
/// </para>
/// </summary>
internal sealed partial class RabbitMqTransport : IMessageTransport, IAsyncDisposable
{
    private const string LeasePrefix = "r.";
    private const string TopicHeader = "fundament-topic";

    private readonly MessageStore _store;
    private readonly PublishWriter _writer;
    private readonly MessagingOptions _options;
    private readonly RabbitMqOptions _rabbit;
    private readonly TimeProvider _time;
    private readonly PublishSignal _signal;
    private readonly MessagingMetrics _metrics;
    private readonly ILogger<RabbitMqTransport> _logger;
    private readonly ConcurrentDictionary<string, GroupConsumer> _consumers = new(StringComparer.Ordinal);
    /// <summary>Every consumer whose channel is open: the current one of each group, and stopped ones still settling their leases.</summary>
    private readonly ConcurrentDictionary<GroupConsumer, byte> _live = new();
    private readonly ConcurrentDictionary<string, GroupConsumer> _leaseOwners = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<SettleReply>> _calls = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private readonly SemaphoreSlim _starting = new(1, 1);
    private readonly Lock _sequenceGate = new();
    private long _lastSequence;
    private IConnection? _connection;
    private IChannel? _publisher;
    private IChannel? _control;
    private IChannel? _dead;
    private volatile bool _disposed;

    public RabbitMqTransport(MessageStore store, PublishWriter writer, IOptions<MessagingOptions> options, TimeProvider time, PublishSignal signal, MessagingMetrics metrics,
        ILogger<RabbitMqTransport> logger)
    {
        _store = store;
        _writer = writer;
        _options = options.Value;
        _rabbit = _options.RabbitMq;
        _time = time;
        _signal = signal;
        _metrics = metrics;
        _logger = logger;
        Exchange = _rabbit.Prefix + ".topics";
        DeadExchange = _rabbit.Prefix + ".dead-letters";
        DeadQueue = _rabbit.Prefix + ".dead-letters";
    }

    /// <summary>This process's name in lease ids and its control queue.</summary>
    public string Node { get; } = RandomNumberGenerator.GetHexString(12, lowercase: true);

    private string Exchange { get; }

    private string DeadExchange { get; }

    private string DeadQueue { get; }

    /// <summary>How long after the last pull call the broker keeps pushing to this node: a waiting pull calls again every PullPollInterval.</summary>
    private TimeSpan ConsumeLinger => TimeSpan.FromMilliseconds(Math.Max(1000, 4 * _options.PullPollInterval.TotalMilliseconds));

    private string ControlQueue(string node) => $"{_rabbit.Prefix}.node.{node}";

    /// <summary>The group's queue: <c>{prefix}.group.{topic}/{group}</c> ('/' is in neither name), hashed when that is over AMQP's 255 bytes.</summary>
    public string QueueName(GroupDefinition group)
    {
        var name = $"{_rabbit.Prefix}.group.{group.Topic}/{group.Name}";
        return Encoding.UTF8.GetByteCount(name) <= 255 ? name
            : $"{_rabbit.Prefix}.group.{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(group.Topic + "/" + group.Name)))}";
    }

    private static string KeyOf(GroupDefinition group) => string.Create(CultureInfo.InvariantCulture, $"{group.Topic}\n{group.Name}\n{group.CreatedAt}");

    private static bool Same(GroupDefinition a, GroupDefinition b) => a.Topic == b.Topic && a.Name == b.Name && a.CreatedAt == b.CreatedAt;

    /// <summary>
    /// Every group is served. An ordered group has no queue: a queue cannot hold one key back behind
    /// its failed message while the rest flows, so its deliveries live in the database, written after
    /// the broker confirmed the publish, and pulls, retries and dead letters are the embedded transport's.
    /// </summary>
    public string? Refuses(GroupDefinition group) => null;

    // ---------------------------------------------------------------- connection

    /// <summary>Connects unless connected (for the health check).</summary>
    public Task ConnectedAsync(CancellationToken cancellationToken) => ConnectionAsync(cancellationToken);

    private async Task<IConnection> ConnectionAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Healthy() is { } open)
        {
            return open;
        }
        await _connecting.WaitAsync(cancellationToken);
        IConnection? connection = null;
        try
        {
            if (Healthy() is { } again)
            {
                return again;
            }
            if (_connection is { } old)
            {
                // Open but with a channel of its own closed (a channel error): start over on a new one.
                _connection = null;
                await SafelyAsync(() => old.AbortAsync(TimeSpan.FromSeconds(1)));
                await SafelyAsync(() => old.DisposeAsync().AsTask());
            }
            var factory = new ConnectionFactory
            {
                Uri = _rabbit.Uri!,
                // Reconnection is ours: a lost connection voids this node's leases (the broker takes its
                // unacked deliveries back), and the next use connects again with the topology re-declared.
                AutomaticRecoveryEnabled = false,
                TopologyRecoveryEnabled = false,
                RequestedHeartbeat = TimeSpan.FromSeconds(10),
                RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
                ClientProvidedName = $"fundament {Node}",
            };
            // Set up whole or not at all, on a budget of its own: a caller giving up half way must not
            // leave a half-set-up connection behind (it would hold the exclusive control queue).
            using var setupTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            var token = setupTimeout.Token;
            connection = await factory.CreateConnectionAsync(token);
            connection.ConnectionShutdownAsync += (_, e) =>
            {
                if (!_disposed)
                {
                    LogConnectionLost(e.ReplyCode, e.ReplyText);
                }
                foreach (var call in _calls.Values)
                {
                    call.TrySetException(TransportException.Unavailable("The connection to RabbitMQ was lost while waiting for the node that holds the lease."));
                }
                return Task.CompletedTask;
            };
            await using (var setup = await connection.CreateChannelAsync(cancellationToken: token))
            {
                await setup.ExchangeDeclareAsync(Exchange, ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: token);
                await setup.ExchangeDeclareAsync(DeadExchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: token);
                // An explicit, high delivery-limit: RabbitMQ 4 defaults quorum queues to 20, and a dead letter
                // given back while the database is away must not be dropped after 20 tries.
                await setup.QueueDeclareAsync(DeadQueue, durable: true, exclusive: false, autoDelete: false,
                    arguments: new Dictionary<string, object?> { ["x-queue-type"] = "quorum", ["x-delivery-limit"] = 100_000 }, cancellationToken: token);
                await setup.QueueBindAsync(DeadQueue, DeadExchange, "", cancellationToken: token);
            }
            // Every group's queue, so no publish is confirmed while a group has no queue to receive it
            // (a broker that was reset, a queue deleted by hand, an installation switched to RabbitMQ).
            await DeclareAllGroupsAsync(connection);

            var publisher = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), token);

            // The control queue: acks and nacks other nodes forward here, and their answers.
            var control = await connection.CreateChannelAsync(cancellationToken: token);
            await control.QueueDeclareAsync(ControlQueue(Node), durable: false, exclusive: true, autoDelete: true, cancellationToken: token);
            var controlConsumer = new AsyncEventingBasicConsumer(control);
            controlConsumer.ReceivedAsync += (_, e) =>
            {
                var body = e.Body.ToArray();
                var properties = (e.BasicProperties.CorrelationId, e.BasicProperties.ReplyTo, e.BasicProperties.Type);
                _ = Task.Run(() => OnControlAsync(body, properties));
                return Task.CompletedTask;
            };
            await control.BasicConsumeAsync(ControlQueue(Node), autoAck: true, controlConsumer, token);

            // Messages RabbitMQ dead-lettered (delivery-limit): moved to their group's dead letters.
            var dead = await connection.CreateChannelAsync(cancellationToken: token);
            await dead.BasicQosAsync(0, 20, false, token);
            var deadConsumer = new AsyncEventingBasicConsumer(dead);
            deadConsumer.ReceivedAsync += (_, e) => OnBrokerDeadLetterAsync(dead, e);
            await dead.BasicConsumeAsync(DeadQueue, autoAck: false, deadConsumer, token);

            (_publisher, _control, _dead, _connection) = (publisher, control, dead, connection);
            connection = null;
            LogConnected(Node);
            return _connection;
        }
        catch (Exception ex) when (ex is not TransportException)
        {
            // Whatever failed (the broker, the network, the budget, the database listing the groups): not connected.
            throw TransportException.Unavailable("RabbitMQ is unreachable; try again shortly.", ex);
        }
        finally
        {
            _connecting.Release();
            if (connection is not null)
            {
                // Abort, not close: nothing to wait for on a connection that failed to set up.
                await SafelyAsync(() => connection.AbortAsync(TimeSpan.FromSeconds(1)));
                await SafelyAsync(() => connection.DisposeAsync().AsTask());
            }
        }
    }

    /// <summary>The connection, when it and the node's own channels (publisher, control, dead letters) are open.</summary>
    private IConnection? Healthy() =>
        _connection is { IsOpen: true } c && _publisher is { IsOpen: true } && _control is { IsOpen: true } && _dead is { IsOpen: true } ? c : null;

    /// <summary>
    /// Declares every unordered group's queue on one channel (a new one after a refusal), on a budget
    /// of its own; a group that fails is logged and declared again on its next create or pull.
    /// </summary>
    private async Task DeclareAllGroupsAsync(IConnection connection)
    {
        using var budget = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        IChannel? channel = null;
        try
        {
            string? afterTopic = null, afterName = null;
            while (true)
            {
                var page = await _store.ListGroupsAsync(null, afterTopic, afterName, 500, budget.Token);
                foreach (var group in page.Where(g => !g.IsOrdered))
                {
                    if (channel is not { IsOpen: true })
                    {
                        if (channel is not null)
                        {
                            await SafelyAsync(() => channel.DisposeAsync().AsTask());
                        }
                        channel = await connection.CreateChannelAsync(cancellationToken: budget.Token);
                    }
                    try
                    {
                        await DeclareAsync(channel, group, budget.Token);
                    }
                    catch (OperationInterruptedException ex)
                    {
                        LogQueueNotDeclared(QueueName(group), ex.Message);
                    }
                }
                if (page.Count < 500)
                {
                    return;
                }
                (afterTopic, afterName) = (page[^1].Topic, page[^1].Name);
            }
        }
        finally
        {
            if (channel is not null)
            {
                await SafelyAsync(() => channel.DisposeAsync().AsTask());
            }
        }
    }

    private Dictionary<string, object?> GroupQueueArguments() => new()
    {
        ["x-queue-type"] = "quorum",
        ["x-delivery-limit"] = _rabbit.DeliveryLimit,
        ["x-dead-letter-exchange"] = DeadExchange,
        ["x-dead-letter-strategy"] = "at-least-once",
        ["x-overflow"] = "reject-publish",
        ["x-max-length"] = _options.MaxMessagesPerGroup,
    };

    public async Task PrepareGroupAsync(GroupDefinition group, CancellationToken cancellationToken)
    {
        if (group.IsOrdered)
        {
            return;
        }
        var connection = await ConnectionAsync(cancellationToken);
        try
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            await DeclareAsync(channel, group, cancellationToken);
        }
        catch (Exception ex) when (ex is OperationInterruptedException or AlreadyClosedException)
        {
            throw TransportException.Unavailable("RabbitMQ did not declare the group's queue; try again shortly.", ex);
        }
    }

    /// <summary>
    /// Declares the group's queue and binds it (idempotent). A queue declared before with other
    /// arguments (DeliveryLimit or MaxMessagesPerGroup changed since) keeps them: the broker refuses
    /// the re-declare (406, which closes the channel), and that is logged, not an error.
    /// </summary>
    private async Task DeclareAsync(IChannel channel, GroupDefinition group, CancellationToken cancellationToken)
    {
        try
        {
            await channel.QueueDeclareAsync(QueueName(group), durable: true, exclusive: false, autoDelete: false, arguments: GroupQueueArguments(), cancellationToken: cancellationToken);
            await channel.QueueBindAsync(QueueName(group), Exchange, group.Topic, cancellationToken: cancellationToken);
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 406)
        {
            LogQueueArgumentsDiffer(QueueName(group));
        }
    }

    public async Task GroupDeletedAsync(GroupDefinition group, CancellationToken cancellationToken)
    {
        _consumers.TryRemove(KeyOf(group), out _);
        foreach (var consumer in _live.Keys.Where(c => Same(c.Group, group)))
        {
            Lose(consumer);
            _live.TryRemove(consumer, out _);
            await SafelyAsync(() => consumer.Channel.CloseAsync());
        }
        try
        {
            var connection = await ConnectionAsync(cancellationToken);
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            await channel.QueueDeleteAsync(QueueName(group), cancellationToken: cancellationToken);
        }
        catch (Exception ex) when (ex is TransportException or OperationInterruptedException or AlreadyClosedException)
        {
            // The group is gone from the database, so nothing pulls from the queue; a queue left behind
            // keeps collecting the topic's messages until an operator deletes it (logged).
            LogQueueNotDeleted(QueueName(group), ex.Message);
        }
    }

    // ---------------------------------------------------------------- publish

    public async Task<(long Sequence, bool Duplicate)> PublishAsync(string topic, OutgoingMessage message, string? publishedBy, CancellationToken cancellationToken)
    {
        if (UnitOfWork.Current is not null)
        {
            // Inside a unit of work the message commits with the caller's change or not at all: it is
            // stored in the database (an outbox), and pulls serve it from there.
            return await _writer.PublishAsync(topic, message, publishedBy);
        }
        return (await PublishBatchAsync(topic, [message], publishedBy, cancellationToken))[0];
    }

    public async Task<IReadOnlyList<(long Sequence, bool Duplicate)>> PublishBatchAsync(string topic, IReadOnlyList<OutgoingMessage> messages, string? publishedBy, CancellationToken cancellationToken)
    {
        if (UnitOfWork.Current is not null)
        {
            return await _store.PublishAsync(messages.Select(m => (topic, m, publishedBy)).ToList(), CancellationToken.None);
        }
        var given = messages.Where(m => m.IdGiven).Select(m => m.Id).Distinct(StringComparer.Ordinal).ToList();
        var known = given.Count == 0 ? [] : await _store.KnownIdsAsync(topic, given, _time.GetUtcNow() - _options.DedupeWindow, cancellationToken);
        var results = new (long, bool)[messages.Count];
        var fresh = new List<(OutgoingMessage Message, long Sequence)>();
        var first = NextSequences(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            if (known.TryGetValue(messages[i].Id, out var seq))
            {
                results[i] = (seq, true);
                continue;
            }
            seq = first + i;
            results[i] = (seq, false);
            fresh.Add((messages[i], seq));
            if (messages[i].IdGiven)
            {
                known[messages[i].Id] = seq; // a repeat later in the batch is a duplicate of this one
            }
        }
        if (fresh.Count == 0)
        {
            return results;
        }
        var publishedAt = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var remember = fresh.Where(f => f.Message.IdGiven).Select(f => (f.Message.Id, f.Sequence)).ToList();
        try
        {
            await PublishEnvelopeAsync(topic, Envelope.Write(fresh, publishedAt), fresh[0].Message.Id, cancellationToken);
        }
        catch (PublishRefusedException refused)
        {
            // A full group refused it (the topic's other groups may have it). Not acknowledged and not
            // remembered: a re-send once the group drains is published again, so the full group gets it
            // and the others may see it twice (at least once; consumers dedupe by id).
            throw TransportException.Full(refused.Message);
        }
        try
        {
            // The topic's ordered groups (if any) take the messages in the database, after the broker
            // confirmed them: a failure here is a 503, and a re-send reaches the ordered groups once (the
            // database dedupes by id) and the queues again (at least once).
            await _store.PublishAsync(fresh.Select(f => (topic, f.Message, publishedBy)).ToList(), CancellationToken.None, orderedGroupsOnly: true);
        }
        catch (Exception ex)
        {
            throw TransportException.Unavailable("The message was not stored for the topic's ordered groups; publish it again.", ex);
        }
        try
        {
            await _store.RememberIdsAsync(topic, remember, CancellationToken.None);
        }
        catch (Exception ex) when (remember.Count > 0)
        {
            // Published and confirmed: the answer is a success. Only a re-send of these ids within the
            // window would now be published again (at least once, as a crash here would do too).
            LogIdsNotRemembered(topic, ex.Message);
        }
        return results;
    }

    /// <summary>
    /// Publishes through the node's confirm channel and waits for the broker's confirm (persisted in
    /// the group queues' quorum), reconnecting once a connection was lost; within
    /// <see cref="RabbitMqOptions.PublishTimeout"/> or a 503.
    /// </summary>
    private async Task PublishEnvelopeAsync(string topic, byte[] body, string messageId, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_rabbit.PublishTimeout);
        var properties = new BasicProperties
        {
            Persistent = true,
            ContentType = Envelope.ContentType,
            MessageId = messageId,
            Timestamp = new AmqpTimestamp(_time.GetUtcNow().ToUnixTimeSeconds()),
            Headers = new Dictionary<string, object?> { [TopicHeader] = topic },
        };
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await ConnectionAsync(timeout.Token);
                var channel = _publisher!;
                await channel.BasicPublishAsync(Exchange, topic, mandatory: false, properties, body, timeout.Token);
                return;
            }
            catch (PublishException ex) when (!ex.IsReturn)
            {
                // A nack: a group's queue is at x-max-length (reject-publish); the topic's other groups
                // have the message. The caller remembers its ids, so a re-send does not duplicate it there.
                throw new PublishRefusedException(topic, _options.MaxMessagesPerGroup);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw TransportException.Unavailable($"RabbitMQ did not confirm the publish within {_rabbit.PublishTimeout.TotalSeconds:0.#}s; it was not acknowledged, publish again.");
            }
            catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or IOException or TransportException && !timeout.IsCancellationRequested)
            {
                // The connection dropped under the publish (or is not back yet): it may or may not have
                // been routed; publishing again is at least once, which the id (and consumers' dedupe) covers.
                LogPublishRetry(attempt, ex.Message);
            }
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 * attempt * attempt)), timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw TransportException.Unavailable($"RabbitMQ did not confirm the publish within {_rabbit.PublishTimeout.TotalSeconds:0.#}s; it was not acknowledged, publish again.");
            }
        }
    }

    /// <summary><paramref name="count"/> consecutive sequences: milliseconds since the epoch times 4096 plus a counter, ascending on this node.</summary>
    private long NextSequences(int count)
    {
        lock (_sequenceGate)
        {
            var first = Math.Max(_lastSequence + 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() << 12);
            _lastSequence = first + count - 1;
            return first;
        }
    }

    // ---------------------------------------------------------------- consume

    /// <summary>This node's channel for the group (opened on its first pull here), not yet consuming.</summary>
    private async Task<GroupConsumer> ConsumerAsync(GroupDefinition group, CancellationToken cancellationToken)
    {
        var key = KeyOf(group);
        if (_consumers.TryGetValue(key, out var running) && !running.Lost && !running.Stopping)
        {
            running.LastPull = Environment.TickCount64;
            return running;
        }
        await _starting.WaitAsync(cancellationToken);
        try
        {
            if (_consumers.TryGetValue(key, out running) && !running.Lost && !running.Stopping)
            {
                running.LastPull = Environment.TickCount64;
                return running;
            }
            var connection = await ConnectionAsync(cancellationToken);
            // The queue was declared with the group (and again on every connect); not here, so a pull
            // racing a delete cannot bring a deleted group's queue back.
            var channel = await connection.CreateChannelAsync(cancellationToken: CancellationToken.None);
            var consumer = new GroupConsumer(group, channel);
            channel.ChannelShutdownAsync += (_, _) =>
            {
                Lose(consumer);
                _consumers.TryRemove(new KeyValuePair<string, GroupConsumer>(key, consumer));
                _live.TryRemove(consumer, out _);
                return Task.CompletedTask;
            };
            _live[consumer] = 0;
            _consumers[key] = consumer;
            return consumer;
        }
        catch (Exception ex) when (ex is OperationInterruptedException or AlreadyClosedException or TimeoutException)
        {
            throw TransportException.Unavailable("RabbitMQ did not open a channel for the group; try again shortly.", ex);
        }
        finally
        {
            _starting.Release();
        }
    }

    /// <summary>
    /// Lets the broker push the group's messages to this node (twice the pull's max unacked, leases
    /// included, up to <see cref="RabbitMqOptions.Prefetch"/>), for long-polls and backlogs: stopped
    /// about a second after the last pull here. (A buffer emptied by leases held long is refilled by basic.get.)
    /// </summary>
    private async Task StartConsumingAsync(GroupConsumer consumer, int max)
    {
        lock (consumer.Gate)
        {
            if (consumer.Consuming || consumer.Lost || consumer.Stopping)
            {
                return;
            }
            consumer.Consuming = true;
        }
        try
        {
            // Never cancelled by the caller: a consume-ok dropped half way would leave a broker-side
            // consumer whose deliveries nobody tracks.
            await consumer.Channel.BasicQosAsync(0, (ushort)Math.Clamp(2 * max, 1, Math.Min(_rabbit.Prefetch, ushort.MaxValue)), false, CancellationToken.None);
            var amqp = new AsyncEventingBasicConsumer(consumer.Channel);
            amqp.ReceivedAsync += (_, e) => OnDeliveryAsync(consumer, e.DeliveryTag, e.Body);
            var tag = await consumer.Channel.BasicConsumeAsync(QueueName(consumer.Group), autoAck: false, amqp, CancellationToken.None);
            bool stopped;
            lock (consumer.Gate)
            {
                consumer.Tag = tag;
                stopped = consumer.Stopping;
            }
            if (stopped)
            {
                await SafelyAsync(() => consumer.Channel.BasicCancelAsync(tag));
            }
        }
        catch (Exception ex)
        {
            await AbandonAsync(consumer, ex);
            throw TransportException.Unavailable("RabbitMQ did not let this node consume the group's queue; try again shortly.", ex);
        }
    }

    /// <summary>Most basic.get round trips one pull makes before the broker pushes instead.</summary>
    private const int MostGets = 16;

    /// <summary>
    /// Takes messages from the group's queue one delivery at a time (basic.get) until
    /// <paramref name="want"/> are buffered, the queue is empty, or <see cref="MostGets"/> round trips
    /// were made; returns how many messages it took and whether the queue still holds more.
    /// </summary>
    private async Task<(int Taken, bool More)> GetAsync(GroupConsumer consumer, int want)
    {
        var taken = 0;
        for (var i = 0; i < MostGets && taken < want; i++)
        {
            BasicGetResult? got;
            try
            {
                // Never cancelled by the caller: a get-ok dropped half way would leave a delivery unacked and untracked.
                got = await consumer.Channel.BasicGetAsync(QueueName(consumer.Group), autoAck: false, CancellationToken.None);
            }
            catch (Exception ex)
            {
                await AbandonAsync(consumer, ex);
                throw TransportException.Unavailable("RabbitMQ is unreachable; try again shortly.", ex);
            }
            if (got is null)
            {
                return (taken, false);
            }
            var carried = await OnDeliveryAsync(consumer, got.DeliveryTag, got.Body);
            if (carried == 0)
            {
                return (taken, got.MessageCount > 0);
            }
            taken += carried;
            if (got.MessageCount == 0)
            {
                return (taken, false);
            }
        }
        return (taken, true);
    }

    /// <summary>
    /// Gives up a consumer whose channel is in an unknown state (a call failed or timed out, the
    /// database refused what it was handing over): its channel is closed, so the broker hands
    /// everything unacked on it out again. When the queue is missing, it is declared again for the
    /// next pull (if the group still exists).
    /// </summary>
    private async Task AbandonAsync(GroupConsumer consumer, Exception why)
    {
        LogAbandoned(QueueName(consumer.Group), why.Message);
        Lose(consumer);
        _consumers.TryRemove(new KeyValuePair<string, GroupConsumer>(KeyOf(consumer.Group), consumer));
        _live.TryRemove(consumer, out _);
        await SafelyAsync(() => consumer.Channel.CloseAsync());
        if (why is OperationInterruptedException { ShutdownReason.ReplyCode: 404 }
            && await _store.FindGroupAsync(consumer.Group.Topic, consumer.Group.Name, CancellationToken.None) is { } current && Same(current, consumer.Group))
        {
            await SafelyAsync(() => PrepareGroupAsync(current, CancellationToken.None));
        }
    }

    /// <summary>Buffers a delivery's messages for this node's pulls; returns how many (0 for what is not an envelope, rejected to the dead-letter queue).</summary>
    private async Task<int> OnDeliveryAsync(GroupConsumer consumer, ulong tag, ReadOnlyMemory<byte> body)
    {
        var read = Envelope.Read(body);
        if (read is not { } envelope)
        {
            LogNotAnEnvelope(QueueName(consumer.Group));
            await SafelyAsync(() => consumer.Channel.BasicRejectAsync(tag, requeue: false).AsTask());
            return 0;
        }
        lock (consumer.Gate)
        {
            if (consumer.Lost)
            {
                // The channel is closed: the broker has it back already.
                return 0;
            }
            // Also when stopping: the sweeper hands the buffer to the database (a requeue would count
            // against the queue's delivery-limit).
            var delivery = new Delivery(consumer, tag, envelope.Messages.Count);
            foreach (var (message, sequence) in envelope.Messages)
            {
                consumer.Buffer.AddLast(new Item(delivery, message, sequence, envelope.PublishedAt));
            }
        }
        _signal.Notify();
        return envelope.Messages.Count;
    }

    public async Task<PullOutcome> PullAsync(GroupDefinition group, int max, long maxBytes, TimeSpan lease, bool waiting, CancellationToken cancellationToken)
    {
        // Leases here that ran out go to the database first, so this pull can hand them out again.
        var expired = 0;
        foreach (var held in _live.Keys.Where(c => Same(c.Group, group)))
        {
            expired += await ExpireAsync(held);
        }
        // What the database holds for the group first: retries, replayed dead letters, messages published inside a unit of work.
        var stored = await _store.PullAsync(group, max, maxBytes, lease, cancellationToken);
        stored = stored with { Expired = stored.Expired + expired };
        if (stored.Messages.Count >= max || group.IsOrdered)
        {
            return stored;
        }
        if (stored.Messages.Count > 0 && Healthy() is null)
        {
            // Not connected: hand out what the database leased now rather than after a connect attempt.
            return stored;
        }
        try
        {
            return await PullFromBrokerAsync(group, stored, max, maxBytes, lease, waiting, cancellationToken);
        }
        catch (TransportException) when (stored.Messages.Count > 0)
        {
            // The broker is away: what the database leased is handed out (not lost to a 503 and its lease).
            return stored;
        }
    }

    private async Task<PullOutcome> PullFromBrokerAsync(GroupDefinition group, PullOutcome stored, int max, long maxBytes, TimeSpan lease, bool waiting, CancellationToken cancellationToken)
    {
        var consumer = await ConsumerAsync(group, cancellationToken);
        int buffered;
        lock (consumer.Gate)
        {
            buffered = consumer.Buffer.Count;
        }
        if (buffered == 0)
        {
            // basic.get: what was published before this pull is seen by it (pushed messages would arrive
            // a moment later). With a backlog beyond a few round trips, or a pull that waits for more, the
            // broker pushes from now on: a basic.get per message is a round trip each.
            var want = max - stored.Messages.Count;
            var (got, more) = await GetAsync(consumer, want);
            if ((more && got < want) || (got == 0 && waiting))
            {
                await StartConsumingAsync(consumer, max);
            }
        }
        var now = _time.GetUtcNow();
        var until = now + lease;
        var taken = new List<LeasedMessage>(stored.Messages);
        long bytes = stored.Messages.Sum(m => (long)m.Body.GetRawText().Length);
        lock (consumer.Gate)
        {
            while (taken.Count < max && consumer.Buffer.First is { } node && !consumer.Lost)
            {
                var item = node.Value;
                var size = item.Message.Bytes;
                if (taken.Count > 0 && bytes + size > maxBytes)
                {
                    break;
                }
                consumer.Buffer.RemoveFirst();
                bytes += size;
                var leaseId = $"{LeasePrefix}{Node}.{RandomNumberGenerator.GetHexString(24, lowercase: true)}";
                consumer.Leases[leaseId] = new Lease(leaseId, item, until);
                _leaseOwners[leaseId] = consumer;
                taken.Add(new LeasedMessage(item.Message.Id, group.Topic, item.Sequence, item.Message.Key, Parse(item.Message.Body), ParseHeaders(item.Message.Headers),
                    DateTimeOffset.FromUnixTimeMilliseconds(item.PublishedAt), 1, leaseId, until));
            }
        }
        return stored with { Messages = taken };
    }

    /// <summary>
    /// Hands the consumer's leases that ran out to the database (due again at once, the attempt
    /// counted; a dead letter, or dropped, on the last attempt), then acks them; returns how many
    /// were dead-lettered or dropped (for the caller to count).
    /// </summary>
    private async Task<int> ExpireAsync(GroupConsumer consumer)
    {
        var now = _time.GetUtcNow();
        List<Lease> expired;
        lock (consumer.Gate)
        {
            expired = consumer.Leases.Values.Where(l => l.Until <= now).ToList();
            foreach (var lease in expired)
            {
                consumer.Leases.Remove(lease.Id);
                _leaseOwners.TryRemove(lease.Id, out _);
            }
        }
        return expired.Count == 0 ? 0 : await ExpireLeasesAsync(consumer, expired, now);
    }

    /// <summary>Hands leases that ran out (already taken from the consumer) to the database; returns how many were dead-lettered or dropped.</summary>
    private async Task<int> ExpireLeasesAsync(GroupConsumer consumer, IReadOnlyList<Lease> expired, DateTimeOffset now)
    {
        var group = consumer.Group;
        var spent = group.MaxAttempts <= 1;
        var at = now.ToUnixTimeMilliseconds();
        var adopted = spent && !group.IsDeadLettering ? [] : expired.Select(l => spent
            ? new AdoptedMessage(l.Item.Message, l.Item.PublishedAt, MessageStore.Dead, 1, at, "The lease ran out on the last attempt.", null, at, at, at)
            : new AdoptedMessage(l.Item.Message, l.Item.PublishedAt, MessageStore.Ready, 1, at)).ToList();
        await HandOverAsync(consumer, adopted, expired.Select(l => l.Item));
        _signal.Notify();
        return spent ? expired.Count : 0;
    }

    /// <summary>
    /// Stores what the consumer hands to the database, then counts the items settled (acking the
    /// deliveries that are done). If the database refuses, the consumer is abandoned: its channel
    /// closes and the broker hands its deliveries out again, so nothing is left unacked and untracked.
    /// </summary>
    private async Task HandOverAsync(GroupConsumer consumer, IReadOnlyList<AdoptedMessage> adopted, IEnumerable<Item> items)
    {
        try
        {
            await _store.AdoptAsync(consumer.Group, adopted, CancellationToken.None);
        }
        catch (Exception ex)
        {
            await AbandonAsync(consumer, ex);
            throw TransportException.Unavailable("The database did not take the message over; the broker hands it out again.", ex);
        }
        await FinishAsync(items);
    }

    /// <summary>Counts the items settled; acks each delivery none of whose messages is left.</summary>
    private async Task FinishAsync(IEnumerable<Item> items)
    {
        var done = new List<Delivery>();
        foreach (var item in items)
        {
            lock (item.Delivery.Consumer.Gate)
            {
                if (--item.Delivery.Unsettled == 0)
                {
                    done.Add(item.Delivery);
                }
            }
        }
        foreach (var delivery in done)
        {
            // A channel that closed meanwhile took the delivery back: it comes again (at least once).
            await SafelyAsync(() => delivery.Consumer.Channel.BasicAckAsync(delivery.Tag, multiple: false).AsTask());
        }
    }

    private void Lose(GroupConsumer consumer)
    {
        lock (consumer.Gate)
        {
            consumer.Lost = true;
            consumer.Buffer.Clear();
            foreach (var id in consumer.Leases.Keys)
            {
                _leaseOwners.TryRemove(id, out _);
            }
            consumer.Leases.Clear();
        }
    }

    // ---------------------------------------------------------------- settle

    public Task<IReadOnlyList<string>> AckAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken) =>
        SettleAsync(new SettleCommand(SettleOp.Ack, group, leaseIds), cancellationToken).ContinueWith(t => t.Result.Stale, TaskScheduler.Default);

    public async Task<NackOutcome> NackAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, string? reason, string? exceptionType, bool deadLetter, TimeSpan? retryAfter, TimeSpan maxDelay,
        CancellationToken cancellationToken)
    {
        var reply = await SettleAsync(new SettleCommand(SettleOp.Nack, group, leaseIds, reason, exceptionType, deadLetter, (long?)retryAfter?.TotalMilliseconds, (long)maxDelay.TotalMilliseconds),
            cancellationToken);
        return new NackOutcome(reply.Stale, reply.DeadLettered, reply.Dropped);
    }

    public async Task<IReadOnlyList<string>> ReleaseAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken) =>
        (await SettleAsync(new SettleCommand(SettleOp.Release, group, leaseIds), cancellationToken)).Stale;

    /// <summary>Settles the database's leases there, this node's here, and forwards each other node's share to it.</summary>
    private async Task<SettleReply> SettleAsync(SettleCommand command, CancellationToken cancellationToken)
    {
        var byNode = command.LeaseIds.GroupBy(NodeOf).ToList();
        var stale = new List<string>();
        int dead = 0, dropped = 0;
        foreach (var share in byNode)
        {
            var part = command with { LeaseIds = share.ToList() };
            SettleReply reply;
            if (share.Key is null)
            {
                reply = await SettleInDatabaseAsync(part, cancellationToken);
            }
            else if (share.Key == Node)
            {
                reply = await SettleHereAsync(part);
            }
            else
            {
                reply = await ForwardAsync(share.Key, part, cancellationToken);
            }
            stale.AddRange(reply.Stale);
            dead += reply.DeadLettered;
            dropped += reply.Dropped;
        }
        return new SettleReply(stale, dead, dropped);
    }

    /// <summary>The node a RabbitMQ lease id names; null for the database's lease ids (and anything else, which the database answers as stale).</summary>
    private static string? NodeOf(string leaseId) =>
        leaseId.StartsWith(LeasePrefix, StringComparison.Ordinal) && leaseId.Length == LeasePrefix.Length + 12 + 1 + 24 && leaseId[LeasePrefix.Length + 12] == '.'
            && !leaseId.AsSpan(LeasePrefix.Length, 12).ContainsAnyExcept("0123456789abcdef") && !leaseId.AsSpan(LeasePrefix.Length + 13).ContainsAnyExcept("0123456789abcdef")
            ? leaseId.Substring(LeasePrefix.Length, 12)
            : null;

    private async Task<SettleReply> SettleInDatabaseAsync(SettleCommand c, CancellationToken cancellationToken)
    {
        switch (c.Op)
        {
            case SettleOp.Ack:
                return new SettleReply(await _store.AckAsync(c.Group, c.LeaseIds, cancellationToken), 0, 0);
            case SettleOp.Release:
                return new SettleReply(await _store.ReleaseAsync(c.Group, c.LeaseIds, cancellationToken), 0, 0);
            default:
                var outcome = await _store.NackAsync(c.Group, c.LeaseIds, c.Reason, c.ExceptionType, c.DeadLetter, c.RetryAfterMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null,
                    TimeSpan.FromMilliseconds(c.MaxDelayMs), cancellationToken);
                return new SettleReply(outcome.Stale, outcome.DeadLettered, outcome.Dropped);
        }
    }

    /// <summary>
    /// Settles leases this node holds, per consumer that holds them. A lease that ran out is stale
    /// (and handed to the database as expired). Dead-lettered and dropped messages are counted by the
    /// caller's API from the reply.
    /// </summary>
    private async Task<SettleReply> SettleHereAsync(SettleCommand c)
    {
        var held = new List<(GroupConsumer Owner, Lease Lease)>();
        var stale = new List<string>();
        foreach (var id in c.LeaseIds)
        {
            if (_leaseOwners.TryGetValue(id, out var owner) && Same(owner.Group, c.Group))
            {
                lock (owner.Gate)
                {
                    if (!owner.Lost && owner.Leases.Remove(id, out var lease))
                    {
                        _leaseOwners.TryRemove(id, out _);
                        held.Add((owner, lease));
                        continue;
                    }
                }
            }
            stale.Add(id);
        }
        int dead = 0, dropped = 0;
        foreach (var byOwner in held.GroupBy(h => h.Owner))
        {
            try
            {
                (dead, dropped) = await SettleHeldAsync(c, byOwner.Key, byOwner.Select(h => h.Lease).ToList(), stale, dead, dropped);
            }
            catch (TransportException)
            {
                // The database refused what this consumer handed over: its channel was given up, so the
                // broker hands these out again; for the caller they no longer hold.
                stale.AddRange(byOwner.Select(h => h.Lease.Id));
            }
        }
        return new SettleReply(stale.Distinct(StringComparer.Ordinal).ToList(), dead, dropped);
    }

    private async Task<(int Dead, int Dropped)> SettleHeldAsync(SettleCommand c, GroupConsumer consumer, List<Lease> leases, List<string> stale, int dead, int dropped)
    {
        var group = consumer.Group;
        var now = _time.GetUtcNow();
        var at = now.ToUnixTimeMilliseconds();
        var ranOut = leases.Where(l => l.Until <= now).ToList();
        if (ranOut.Count > 0)
        {
            // Ran out before this settle: handed out again (the attempt counted), as a pull would have found it.
            stale.AddRange(ranOut.Select(l => l.Id));
            var spent = await ExpireLeasesAsync(consumer, ranOut, now);
            _metrics.Settled(group.Topic, group.Name, group.IsDeadLettering ? spent : 0, group.IsDeadLettering ? 0 : spent);
            leases = leases.Except(ranOut).ToList();
        }
        if (leases.Count == 0)
        {
            return (dead, dropped);
        }
        switch (c.Op)
        {
            case SettleOp.Ack:
                await FinishAsync(leases.Select(l => l.Item));
                break;
            case SettleOp.Release:
                bool stopping;
                lock (consumer.Gate)
                {
                    // Back at the head of this node's buffer, untried: the next pull here takes them first.
                    for (var i = leases.Count - 1; i >= 0; i--)
                    {
                        consumer.Buffer.AddFirst(leases[i].Item);
                    }
                    stopping = consumer.Stopping;
                }
                if (stopping)
                {
                    await GiveBackAsync(consumer);
                }
                _signal.Notify();
                break;
            default:
                var gone = c.DeadLetter || group.MaxAttempts <= 1;
                var delay = c.RetryAfterMs is { } ms ? TimeSpan.FromMilliseconds(ms) : group.BackoffFor(1);
                delay = delay > TimeSpan.FromMilliseconds(c.MaxDelayMs) ? TimeSpan.FromMilliseconds(c.MaxDelayMs) : delay;
                await HandOverAsync(consumer, gone && !group.IsDeadLettering ? [] : leases.Select(l => new AdoptedMessage(l.Item.Message, l.Item.PublishedAt,
                    gone ? MessageStore.Dead : MessageStore.Ready, 1, gone ? at : at + (long)delay.TotalMilliseconds, c.Reason, c.ExceptionType, at, at, gone ? at : null)).ToList(),
                    leases.Select(l => l.Item));
                dead += gone && group.IsDeadLettering ? leases.Count : 0;
                dropped += gone && !group.IsDeadLettering ? leases.Count : 0;
                _signal.Notify();
                break;
        }
        return (dead, dropped);
    }

    private async Task<SettleReply> ForwardAsync(string node, SettleCommand command, CancellationToken cancellationToken)
    {
        var correlation = Guid.NewGuid().ToString("N");
        var call = new TaskCompletionSource<SettleReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _calls[correlation] = call;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_rabbit.SettleTimeout);
            await ConnectionAsync(timeout.Token);
            var properties = new BasicProperties { CorrelationId = correlation, ReplyTo = ControlQueue(Node), Type = "settle" };
            try
            {
                await _publisher!.BasicPublishAsync("", ControlQueue(node), mandatory: true, properties, JsonSerializer.SerializeToUtf8Bytes(command, JsonSerializerOptions.Web), timeout.Token);
            }
            catch (PublishException ex) when (ex.IsReturn)
            {
                // No such node any more: its connection closed, so the broker took its deliveries back
                // and hands them out again; these leases hold nowhere.
                return new SettleReply(command.LeaseIds, 0, 0);
            }
            return await call.Task.WaitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw TransportException.Unavailable($"The node holding the leases did not answer within {_rabbit.SettleTimeout.TotalSeconds:0.#}s; settle again.");
        }
        catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException)
        {
            throw TransportException.Unavailable("RabbitMQ connection lost while settling; settle again.", ex);
        }
        finally
        {
            _calls.TryRemove(correlation, out _);
        }
    }

    private async Task OnControlAsync(byte[] body, (string? CorrelationId, string? ReplyTo, string? Type) properties)
    {
        try
        {
            if (properties.Type == "reply")
            {
                if (properties.CorrelationId is { } id && _calls.TryGetValue(id, out var call))
                {
                    call.TrySetResult(JsonSerializer.Deserialize<SettleReply>(body, JsonSerializerOptions.Web)!);
                }
                return;
            }
            var command = JsonSerializer.Deserialize<SettleCommand>(body, JsonSerializerOptions.Web)!;
            // Only this node's own leases are settled here, whatever a command names.
            var mine = command.LeaseIds.Where(id => NodeOf(id) == Node).ToList();
            var reply = await SettleHereAsync(command with { LeaseIds = mine });
            reply = reply with { Stale = [.. reply.Stale, .. command.LeaseIds.Except(mine)] };
            if (properties.ReplyTo is { } replyTo && _publisher is { } publisher)
            {
                await publisher.BasicPublishAsync("", replyTo, mandatory: false, new BasicProperties { CorrelationId = properties.CorrelationId, Type = "reply" },
                    JsonSerializer.SerializeToUtf8Bytes(reply, JsonSerializerOptions.Web));
            }
        }
        catch (Exception ex)
        {
            LogControlFailed(ex);
        }
    }

    // ---------------------------------------------------------------- background

    /// <summary>
    /// Runs about once a second: expires leases that ran out (also when nobody pulls), stops
    /// consuming groups this node has not been pulled for in <see cref="RabbitMqOptions.ConsumerIdle"/>
    /// (giving back what it took ahead), and closes a stopped consumer's channel once its leases are settled.
    /// </summary>
    public async Task SweepAsync()
    {
        if (Healthy() is null && !_disposed)
        {
            // Connected all the time, not only on use: the control queue answers other nodes' forwarded
            // acks, and the broker's dead letters are moved into the database, even on a node nobody calls.
            try
            {
                await ConnectionAsync(CancellationToken.None);
            }
            catch (TransportException ex)
            {
                LogStillUnreachable(ex.InnerException?.Message ?? ex.Message);
            }
        }
        foreach (var consumer in _live.Keys)
        {
            var key = KeyOf(consumer.Group);
            try
            {
                if (consumer.Lost)
                {
                    _consumers.TryRemove(new KeyValuePair<string, GroupConsumer>(key, consumer));
                    _live.TryRemove(consumer, out _);
                    continue;
                }
                if (await ExpireAsync(consumer) is > 0 and var spent)
                {
                    _metrics.Settled(consumer.Group.Topic, consumer.Group.Name, consumer.Group.IsDeadLettering ? spent : 0, consumer.Group.IsDeadLettering ? 0 : spent);
                }
                var quiet = Environment.TickCount64 - consumer.LastPull;
                if (consumer.Consuming && consumer.Tag is { } pushing && quiet > ConsumeLinger.TotalMilliseconds)
                {
                    // No pull is waiting here (a waiting pull looks again every PullPollInterval): the broker
                    // stops pushing to this node, so new messages wait in the queue for whichever node pulls next.
                    lock (consumer.Gate)
                    {
                        consumer.Consuming = false;
                        consumer.Tag = null;
                    }
                    await SafelyAsync(() => consumer.Channel.BasicCancelAsync(pushing));
                    // What it pushed ahead and nobody here will pull goes to the database, where any node's pull finds it.
                    await GiveBackAsync(consumer);
                }
                if (!consumer.Stopping && quiet > _rabbit.ConsumerIdle.TotalMilliseconds)
                {
                    lock (consumer.Gate)
                    {
                        consumer.Stopping = true;
                    }
                    if (consumer.Tag is { } tag)
                    {
                        await SafelyAsync(() => consumer.Channel.BasicCancelAsync(tag));
                    }
                }
                if (consumer.Stopping)
                {
                    // Also what a pull or a push delivered after it stopped.
                    await GiveBackAsync(consumer);
                    bool idle;
                    lock (consumer.Gate)
                    {
                        idle = consumer.Leases.Count == 0 && consumer.Buffer.Count == 0;
                    }
                    if (idle && _live.TryRemove(consumer, out _))
                    {
                        _consumers.TryRemove(new KeyValuePair<string, GroupConsumer>(key, consumer));
                        await SafelyAsync(() => consumer.Channel.CloseAsync());
                    }
                }
            }
            catch (Exception ex)
            {
                LogSweepFailed(ex);
            }
        }
    }

    /// <summary>
    /// Gives back what a consumer took ahead and no pull here took: into the database, due at once
    /// with no attempt used, then acked. (Not back to the queue: a requeue counts against the
    /// queue's delivery-limit, and a slow consumer would then see its messages dead-lettered.)
    /// </summary>
    private async Task GiveBackAsync(GroupConsumer consumer)
    {
        List<Item> buffered;
        lock (consumer.Gate)
        {
            buffered = [.. consumer.Buffer];
            consumer.Buffer.Clear();
        }
        if (buffered.Count > 0)
        {
            var at = _time.GetUtcNow().ToUnixTimeMilliseconds();
            await HandOverAsync(consumer, buffered.Select(i => new AdoptedMessage(i.Message, i.PublishedAt, MessageStore.Ready, 0, at)).ToList(), buffered);
            _signal.Notify();
        }
    }

    private async Task OnBrokerDeadLetterAsync(IChannel channel, BasicDeliverEventArgs e)
    {
        try
        {
            var headers = e.BasicProperties.Headers;
            var topic = Text(headers, TopicHeader);
            var queue = Text(headers, "x-first-death-queue");
            var reason = Text(headers, "x-first-death-reason");
            GroupDefinition? group = null;
            if (topic is not null && queue is not null)
            {
                string? after = null;
                while (group is null)
                {
                    var page = await _store.ListGroupsAsync(topic, after is null ? null : topic, after, 500, CancellationToken.None);
                    group = page.FirstOrDefault(g => QueueName(g) == queue);
                    if (page.Count < 500)
                    {
                        break;
                    }
                    after = page[^1].Name;
                }
            }
            if (group is not null && Envelope.Read(e.Body) is { } envelope)
            {
                var at = _time.GetUtcNow().ToUnixTimeMilliseconds();
                if (group.IsDeadLettering)
                {
                    var why = $"RabbitMQ dead-lettered it ({reason ?? "unknown reason"}): handed out {_rabbit.DeliveryLimit} times to nodes that crashed or lost their connection before it was settled.";
                    await _store.AdoptAsync(group, envelope.Messages.Select(m => new AdoptedMessage(m.Message, envelope.PublishedAt, MessageStore.Dead, _rabbit.DeliveryLimit, at, why, null, at, at, at)).ToList(),
                        CancellationToken.None);
                }
                _metrics.Settled(group.Topic, group.Name, group.IsDeadLettering ? envelope.Messages.Count : 0, group.IsDeadLettering ? 0 : envelope.Messages.Count);
            }
            else
            {
                LogUnknownDeadLetter(queue ?? "?", reason ?? "?");
            }
            await channel.BasicAckAsync(e.DeliveryTag, multiple: false);
        }
        catch (Exception ex)
        {
            // Given back after a pause (the database may be away): tried again, here or on another node.
            LogControlFailed(ex);
            await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            await SafelyAsync(() => channel.BasicNackAsync(e.DeliveryTag, multiple: false, requeue: true).AsTask());
        }
    }

    private static string? Text(IDictionary<string, object?>? headers, string name) =>
        headers is not null && headers.TryGetValue(name, out var value) ? value switch { byte[] b => Encoding.UTF8.GetString(b), string s => s, _ => null } : null;

    public async Task<(long Ready, long Leased)> HeldAsync(GroupDefinition group, CancellationToken cancellationToken)
    {
        long buffered = 0, leased = 0;
        if (_consumers.TryGetValue(KeyOf(group), out var consumer))
        {
            lock (consumer.Gate)
            {
                buffered = consumer.Buffer.Count;
                leased = consumer.Leases.Count;
            }
        }
        long queued = 0;
        if (!group.IsOrdered)
        {
            try
            {
                // Only on a connection that is up: a describe does not wait for the broker to come back.
                if (Healthy() is { } connection)
                {
                    await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
                    queued = (await channel.QueueDeclarePassiveAsync(QueueName(group), cancellationToken)).MessageCount;
                }
            }
            catch (Exception ex) when (ex is TransportException or OperationInterruptedException or AlreadyClosedException or OperationCanceledException or TimeoutException)
            {
                // Counts are advice: without the broker they show what the database and this node hold.
            }
        }
        return (queued + buffered, leased);
    }

    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        foreach (var consumer in _live.Keys)
        {
            await SafelyAsync(() => GiveBackAsync(consumer));
        }
        if (_connection is { } connection)
        {
            // Closing returns whatever is still leased to the broker, which hands it out again.
            await SafelyAsync(() => connection.CloseAsync(TimeSpan.FromSeconds(5)));
            await SafelyAsync(() => connection.DisposeAsync().AsTask());
        }
    }

    /// <summary>Best-effort cleanup (closing, acking on a channel that may be gone): never throws; the broker's own redelivery covers what it could not do.</summary>
    private static async Task SafelyAsync(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception)
        {
        }
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static Dictionary<string, string>? ParseHeaders(string? json) => json is null ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(json);

    [LoggerMessage(1, LogLevel.Information, "Connected to RabbitMQ as node {Node}")]
    private partial void LogConnected(string node);

    [LoggerMessage(2, LogLevel.Warning, "RabbitMQ connection lost ({Code} {Text}); leases held on it are void, the broker hands their messages out again")]
    private partial void LogConnectionLost(ushort code, string text);

    [LoggerMessage(3, LogLevel.Warning, "Publish interrupted (attempt {Attempt}): {Reason}; publishing again")]
    private partial void LogPublishRetry(int attempt, string reason);

    [LoggerMessage(4, LogLevel.Warning, "Published to topic {Topic} but its ids were not remembered for dedupe: {Reason}")]
    private partial void LogIdsNotRemembered(string topic, string reason);

    [LoggerMessage(5, LogLevel.Error, "A message in queue {Queue} is not a Fundament envelope; rejected to the dead-letter queue")]
    private partial void LogNotAnEnvelope(string queue);

    [LoggerMessage(6, LogLevel.Error, "Settling a forwarded lease or a broker dead letter failed")]
    private partial void LogControlFailed(Exception ex);

    [LoggerMessage(7, LogLevel.Error, "Sweeping a consumer failed")]
    private partial void LogSweepFailed(Exception ex);

    [LoggerMessage(8, LogLevel.Warning, "RabbitMQ dead-lettered a message of queue {Queue} ({Reason}) whose group no longer exists; dropped")]
    private partial void LogUnknownDeadLetter(string queue, string reason);

    [LoggerMessage(11, LogLevel.Warning, "Queue {Queue} exists with other arguments (DeliveryLimit or MaxMessagesPerGroup changed since it was declared) and keeps its own; to apply the new ones, delete the group once it is drained and create it again")]
    private partial void LogQueueArgumentsDiffer(string queue);

    [LoggerMessage(12, LogLevel.Warning, "Gave up this node's channel for queue {Queue} ({Reason}); the broker hands what it held out again")]
    private partial void LogAbandoned(string queue, string reason);

    [LoggerMessage(13, LogLevel.Warning, "Queue {Queue} was not declared on connect: {Reason}; the next connect, a create of its group, or a pull that finds it missing declares it")]
    private partial void LogQueueNotDeclared(string queue, string reason);

    [LoggerMessage(10, LogLevel.Debug, "RabbitMQ still unreachable: {Reason}")]
    private partial void LogStillUnreachable(string reason);

    [LoggerMessage(9, LogLevel.Warning, "Queue {Queue} of a deleted group was not deleted: {Reason}")]
    private partial void LogQueueNotDeleted(string queue, string reason);
}

internal enum SettleOp { Ack, Nack, Release }

internal sealed class PublishRefusedException(string topic, long limit)
    : Exception($"A consumer group of topic '{topic}' is full ({limit} messages); publishing resumes once it drains. The topic's other groups may have received the message.");

/// <summary>An ack, nack or release of leases, as forwarded to the node that holds them.</summary>
internal sealed record SettleCommand(SettleOp Op, GroupDefinition Group, IReadOnlyList<string> LeaseIds, string? Reason = null, string? ExceptionType = null, bool DeadLetter = false,
    long? RetryAfterMs = null, long MaxDelayMs = 0);

internal sealed record SettleReply(IReadOnlyList<string> Stale, int DeadLettered, int Dropped);

/// <summary>Sweeps the RabbitMQ transport's consumers about once a second, and closes its connection on shutdown.</summary>
internal sealed class RabbitMqSweeper(RabbitMqTransport transport, ILogger<RabbitMqSweeper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await transport.SweepAsync();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // One bad tick (the database away, say) must not stop the host: the next one tries again.
                    logger.LogError(ex, "Sweeping the RabbitMQ transport failed");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await transport.DisposeAsync();
    }
}
