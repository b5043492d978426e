using Fundament.Messaging.Storage;
using RabbitMQ.Client;

namespace Fundament.Messaging.Transport.RabbitMq;

/// <summary>
/// This node's consumer of one group's queue: its own channel (prefetch
/// <see cref="RabbitMqOptions.Prefetch"/>), the messages taken ahead of pulls and the leases handed
/// out. A delivery is acked to RabbitMQ once every message it carries is settled here (acked, or
/// taken over by the database); until then it stays unacked on this channel, so if this node dies
/// the broker hands it to another. Everything mutable is guarded by <see cref="Gate"/>.
/// </summary>
internal sealed class GroupConsumer(GroupDefinition group, IChannel channel)
{
    public GroupDefinition Group { get; } = group;

    public IChannel Channel { get; } = channel;

    public object Gate { get; } = new();

    /// <summary>The broker pushes the queue's messages to this node (for long-polls); otherwise pulls take them one by one.</summary>
    public bool Consuming { get; set; }

    public string? Tag { get; set; }

    /// <summary>Messages taken from the broker and not leased, in delivery order.</summary>
    public LinkedList<Item> Buffer { get; } = new();

    public Dictionary<string, Lease> Leases { get; } = new(StringComparer.Ordinal);

    /// <summary>The channel closed: the broker took back everything unacked; no lease of this consumer holds.</summary>
    public bool Lost { get; set; }

    /// <summary>Cancelled for idleness: takes nothing new, closes once its leases are settled.</summary>
    public bool Stopping { get; set; }

    /// <summary><see cref="Environment.TickCount64"/> of the last pull.</summary>
    public long LastPull { get; set; } = Environment.TickCount64;
}

/// <summary>One AMQP delivery: acked once none of its messages is left unsettled.</summary>
internal sealed class Delivery(GroupConsumer consumer, ulong tag, int count)
{
    public GroupConsumer Consumer { get; } = consumer;

    public ulong Tag { get; } = tag;

    public int Count { get; } = count;

    /// <summary>Messages not yet settled (guarded by the consumer's gate).</summary>
    public int Unsettled { get; set; } = count;
}

internal sealed class Item(Delivery delivery, OutgoingMessage message, long sequence, long publishedAt)
{
    public Delivery Delivery { get; } = delivery;

    public OutgoingMessage Message { get; } = message;

    public long Sequence { get; } = sequence;

    public long PublishedAt { get; } = publishedAt;
}

internal sealed class Lease(string id, Item item, DateTimeOffset until)
{
    public string Id { get; } = id;

    public Item Item { get; } = item;

    public DateTimeOffset Until { get; } = until;
}
