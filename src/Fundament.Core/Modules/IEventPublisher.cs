using System.Text.Json;

namespace Fundament.Core.Modules;

/// <summary>
/// The platform's domain events (<c>media.ready</c>, ...). There is one path for them: publishing
/// puts the event on the message bus (topic <c>fundament.&lt;event&gt;</c>, durable before this
/// returns), and everything that reacts to it consumes it from there: the webhooks of the delivery
/// module as the bus's consumer group <c>fundament.webhooks</c>, services through their own consumer
/// groups. Delivery is at least once: a publisher that retries after a failure may publish twice.
/// </summary>
public interface IEventPublisher
{
    /// <param name="eventName">e.g. <c>media.ready</c>.</param>
    /// <param name="audience">The actor the event concerns (<c>user:&lt;id&gt;</c>): their own subscriptions and all-events subscriptions receive it.</param>
    /// <param name="data">Serialized as the <c>data</c> field of the payload.</param>
    /// <param name="eventId">
    /// The event's id when the publisher has a stable one (an outbox row's): published again within the
    /// bus's dedupe window it is a duplicate, not a second event. A new id otherwise.
    /// </param>
    Task PublishAsync(string eventName, string audience, object data, CancellationToken cancellationToken, string? eventId = null);
}

/// <summary>Where domain events are published; the messaging module registers the bus as the one sink.</summary>
public interface IDomainEventSink
{
    /// <inheritdoc cref="IEventPublisher.PublishAsync"/>
    Task PublishAsync(string eventName, string audience, object data, CancellationToken cancellationToken, string? eventId = null);
}

/// <summary>One domain event as its consumers see it.</summary>
/// <param name="Id">Unique per event (the bus message id): a handler that sees it twice (at-least-once) can tell.</param>
/// <param name="Name">e.g. <c>media.ready</c>.</param>
/// <param name="Audience">The actor it concerns (<c>user:&lt;id&gt;</c>).</param>
/// <param name="At">When it was published.</param>
/// <param name="Data">The event's data as published.</param>
public sealed record DomainEvent(string Id, string Name, string Audience, DateTimeOffset At, JsonElement Data);

/// <summary>
/// A module's reaction to every domain event (the delivery module's webhooks). The messaging module
/// runs it as consumer group <c>fundament.&lt;Name&gt;</c> of every event's topic: a handler that
/// throws is retried with backoff and, after its attempts, dead-lettered where an administrator can
/// see and replay it. It must be idempotent by <see cref="DomainEvent.Id"/>.
/// </summary>
public interface IDomainEventHandler
{
    /// <summary>Names the consumer group (<c>fundament.&lt;Name&gt;</c>): letters, digits and '-' only.</summary>
    string Name { get; }

    /// <summary>The events it reacts to (a consumer group each); null for every event type.</summary>
    IReadOnlySet<string>? Events => null;

    Task HandleAsync(DomainEvent domainEvent, CancellationToken cancellationToken);
}

/// <summary>
/// The <see cref="IEventPublisher"/> of the host: every sink, in registration order; the first failure
/// stops and is thrown. A host without the messaging module has no sink: then the handlers run at once,
/// in the publisher's call (no retries beyond the publisher's own).
/// </summary>
internal sealed class DomainEventPublisher(IEnumerable<IDomainEventSink> sinks, IEnumerable<IDomainEventHandler> handlers, TimeProvider time) : IEventPublisher
{
    private readonly IDomainEventSink[] _sinks = [.. sinks];
    private readonly IDomainEventHandler[] _handlers = [.. handlers];

    public async Task PublishAsync(string eventName, string audience, object data, CancellationToken cancellationToken, string? eventId = null)
    {
        foreach (var sink in _sinks)
        {
            await sink.PublishAsync(eventName, audience, data, cancellationToken, eventId).ConfigureAwait(false);
        }
        if (_sinks.Length == 0 && _handlers.Length > 0)
        {
            var domainEvent = new DomainEvent(eventId ?? Guid.CreateVersion7().ToString(), eventName, audience, time.GetUtcNow(), JsonSerializer.SerializeToElement(data, JsonSerializerOptions.Web));
            foreach (var handler in _handlers)
            {
                await handler.HandleAsync(domainEvent, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
