namespace Fundament.Core.Modules;

/// <summary>
/// The platform's domain events (<c>media.ready</c>, ...). Publishing hands the event to every
/// <see cref="IDomainEventSink"/> of the host before it returns: the delivery module's webhooks
/// (one durable, signed, retried delivery per matching subscription) and the messaging module's bus
/// (topic <c>fundament.&lt;event&gt;</c>). Delivery is at least once: a publisher that retries after a
/// failure may reach a sink twice.
/// </summary>
public interface IEventPublisher
{
    /// <param name="eventName">e.g. <c>media.ready</c>.</param>
    /// <param name="audience">The actor the event concerns (<c>user:&lt;id&gt;</c>): their own subscriptions and all-events subscriptions receive it.</param>
    /// <param name="data">Serialized as the <c>data</c> field of the payload.</param>
    Task PublishAsync(string eventName, string audience, object data, CancellationToken cancellationToken);
}

/// <summary>Where domain events go; each module that carries them out registers one (with TryAddEnumerable).</summary>
public interface IDomainEventSink
{
    /// <inheritdoc cref="IEventPublisher.PublishAsync"/>
    Task PublishAsync(string eventName, string audience, object data, CancellationToken cancellationToken);
}

/// <summary>The <see cref="IEventPublisher"/> of the host: every sink, in registration order; the first failure stops and is thrown.</summary>
internal sealed class DomainEventPublisher(IEnumerable<IDomainEventSink> sinks) : IEventPublisher
{
    private readonly IDomainEventSink[] _sinks = [.. sinks];

    public async Task PublishAsync(string eventName, string audience, object data, CancellationToken cancellationToken)
    {
        foreach (var sink in _sinks)
        {
            await sink.PublishAsync(eventName, audience, data, cancellationToken).ConfigureAwait(false);
        }
    }
}
