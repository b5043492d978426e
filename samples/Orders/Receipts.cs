using System.Collections.Concurrent;
using Fundament.Client.Events;
using Fundament.Client.Messaging;

namespace Orders;

/// <summary>The message other services get when an order is paid (topic <c>orders.paid</c>, key: the order id).</summary>
public sealed record OrderPaidMessage(string OrderId, DateTimeOffset PaidAt);

/// <summary>
/// The outbox: a catch-up subscription over OrderPaid events publishes each to the bus with the
/// event's id as the message id. The event store keeps the event durably; a crash before the
/// subscription acknowledges it publishes it again, and the bus answers that as a duplicate. So
/// nothing paid goes unannounced and nothing is announced twice.
/// </summary>
public sealed class OrderPaidPublisher(IFundamentBus bus) : IEventHandler
{
    public async Task HandleAsync(StoredEvent e, CancellationToken cancellationToken)
    {
        if (e.Deserialize() is OrderPaid paid)
        {
            await bus.PublishAsync("orders.paid", new OrderPaidMessage(paid.OrderId, paid.PaidAt), new PublishOptions(Id: e.Id, Key: paid.OrderId), cancellationToken);
        }
    }
}

/// <summary>Receipts sent, by order (in memory: the sample's stand-in for a mail service).</summary>
public sealed class Receipts
{
    private readonly ConcurrentDictionary<string, int> _sent = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, int> Sent => _sent;

    public void Send(string orderId) => _sent.AddOrUpdate(orderId, 1, (_, n) => n + 1);
}

/// <summary>A consumer of <c>orders.paid</c> (group <c>receipts</c>): sends one receipt per paid order.</summary>
public sealed class ReceiptHandler(Receipts receipts) : IMessageHandler
{
    public Task HandleAsync(ReceivedMessage message, CancellationToken cancellationToken)
    {
        var paid = message.BodyAs<OrderPaidMessage>() ?? throw new DeadLetterException("not an orders.paid message");
        receipts.Send(paid.OrderId);
        return Task.CompletedTask;
    }
}
