using Fundament.Messaging.Storage;

namespace Fundament.Messaging.Transport;

/// <summary>
/// Where messages travel between a publish and an ack: the seam between the HTTP API and a
/// transport (the embedded one in the shared database, or RabbitMQ). Consumer groups, dead letters,
/// replay and purge live in the database on every transport (ADR 0016); a transport moves a
/// message that fails into it (<see cref="MessageStore.AdoptAsync"/>). A Kafka transport would
/// implement this interface too.
/// </summary>
internal interface IMessageTransport
{
    /// <summary>Publishes one message durably (acknowledged by the transport before this returns).</summary>
    Task<(long Sequence, bool Duplicate)> PublishAsync(string topic, OutgoingMessage message, string? publishedBy, CancellationToken cancellationToken);

    /// <summary>Publishes the messages together: all durable, or none.</summary>
    Task<IReadOnlyList<(long Sequence, bool Duplicate)>> PublishBatchAsync(string topic, IReadOnlyList<OutgoingMessage> messages, string? publishedBy, CancellationToken cancellationToken);

    /// <summary>Whether the transport can serve <paramref name="group"/> (null), or why not.</summary>
    string? Refuses(GroupDefinition group);

    /// <summary>Makes the transport ready to carry the group's messages (idempotent): called before the group is stored.</summary>
    Task PrepareGroupAsync(GroupDefinition group, CancellationToken cancellationToken);

    /// <summary>Drops what the transport holds for a group that was deleted.</summary>
    Task GroupDeletedAsync(GroupDefinition group, CancellationToken cancellationToken);

    /// <summary>
    /// Leases up to <paramref name="max"/> due messages of the group (without waiting; <paramref name="waiting"/>
    /// says the caller long-polls and will ask again, so a broker may start pushing to this node).
    /// </summary>
    Task<PullOutcome> PullAsync(GroupDefinition group, int max, long maxBytes, TimeSpan lease, bool waiting, CancellationToken cancellationToken);

    /// <summary>Acknowledges leased messages; returns the lease ids that no longer hold.</summary>
    Task<IReadOnlyList<string>> AckAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken);

    /// <summary>Retries or dead-letters leased messages (see <see cref="MessageStore.NackAsync"/>).</summary>
    Task<NackOutcome> NackAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, string? reason, string? exceptionType, bool deadLetter, TimeSpan? retryAfter, TimeSpan maxDelay, CancellationToken cancellationToken);

    /// <summary>Gives leased messages back untried; returns the lease ids that no longer hold.</summary>
    Task<IReadOnlyList<string>> ReleaseAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken);

    /// <summary>What the transport holds for the group beyond the database's rows: (ready, leased).</summary>
    Task<(long Ready, long Leased)> HeldAsync(GroupDefinition group, CancellationToken cancellationToken);
}

/// <summary>The embedded transport: everything in the shared database (<see cref="MessageStore"/>), publishes group-committed (<see cref="PublishWriter"/>).</summary>
internal sealed class EmbeddedTransport(MessageStore store, PublishWriter writer) : IMessageTransport
{
    public Task<(long Sequence, bool Duplicate)> PublishAsync(string topic, OutgoingMessage message, string? publishedBy, CancellationToken cancellationToken) =>
        writer.PublishAsync(topic, message, publishedBy);

    public Task<IReadOnlyList<(long Sequence, bool Duplicate)>> PublishBatchAsync(string topic, IReadOnlyList<OutgoingMessage> messages, string? publishedBy, CancellationToken cancellationToken) =>
        // One transaction: the batch is stored whole or not at all.
        store.PublishAsync(messages.Select(m => (topic, m, publishedBy)).ToList(), CancellationToken.None);

    public string? Refuses(GroupDefinition group) => null;

    public Task PrepareGroupAsync(GroupDefinition group, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task GroupDeletedAsync(GroupDefinition group, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<PullOutcome> PullAsync(GroupDefinition group, int max, long maxBytes, TimeSpan lease, bool waiting, CancellationToken cancellationToken) =>
        store.PullAsync(group, max, maxBytes, lease, cancellationToken);

    public Task<IReadOnlyList<string>> AckAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken) =>
        store.AckAsync(group, leaseIds, cancellationToken);

    public Task<NackOutcome> NackAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, string? reason, string? exceptionType, bool deadLetter, TimeSpan? retryAfter, TimeSpan maxDelay, CancellationToken cancellationToken) =>
        store.NackAsync(group, leaseIds, reason, exceptionType, deadLetter, retryAfter, maxDelay, cancellationToken);

    public Task<IReadOnlyList<string>> ReleaseAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken) =>
        store.ReleaseAsync(group, leaseIds, cancellationToken);

    public Task<(long Ready, long Leased)> HeldAsync(GroupDefinition group, CancellationToken cancellationToken) => Task.FromResult((0L, 0L));
}
