using System.Text.Json;
using Fundament.Messaging.Storage;

namespace Fundament.Messaging;

/// <summary>
/// The platform's domain events on the bus: <c>media.ready</c> is published to topic
/// <c>fundament.media.ready</c>, keyed by its audience (<c>user:&lt;id&gt;</c>, so an ordered group sees
/// one owner's events in order), with body <c>{event, audience, at, data}</c>. Topics under
/// <c>fundament.</c> are the platform's: nobody publishes to them through the API, and consuming
/// them needs a topic grant (they carry every tenant's events).
/// </summary>
internal sealed class BusEventSink(Transport.IMessageTransport transport, PublishSignal signal, MessagingMetrics metrics, TimeProvider time) : IDomainEventSink
{
    /// <summary>The prefix of the platform's own topics.</summary>
    public const string ReservedPrefix = "fundament.";

    public async Task PublishAsync(string eventName, string audience, object data, CancellationToken cancellationToken, string? eventId = null)
    {
        var topic = ReservedPrefix + eventName;
        var body = JsonSerializer.Serialize(new { @event = eventName, audience, at = time.GetUtcNow(), data }, JsonSerializerOptions.Web);
        var headers = JsonSerializer.Serialize(new Dictionary<string, string> { ["fundament-event"] = eventName });
        var (_, duplicate) = await transport.PublishAsync(topic, new OutgoingMessage(eventId ?? Guid.CreateVersion7().ToString(), audience, body, headers, IdGiven: eventId is not null), publishedBy: null, cancellationToken);
        if (!duplicate)
        {
            signal.Notify();
            metrics.Published(topic, 1);
        }
    }
}
