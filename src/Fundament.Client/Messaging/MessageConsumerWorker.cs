using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fundament.Client.Messaging;

/// <summary>Handles the messages of one consumer group; registered with <c>AddFundamentConsumer</c>.</summary>
public interface IMessageHandler
{
    /// <summary>
    /// Handles one message. Returning acknowledges it; throwing gives it back to be retried with the
    /// group's backoff, and Fundament dead-letters it after the group's maxAttempts, with the
    /// exception's type and message. Throw <see cref="DeadLetterException"/> to dead-letter it at once
    /// (a poison message no retry will fix). Delivery is at least once: use <see cref="ReceivedMessage.Id"/>
    /// to make handling idempotent (see <see cref="IProcessedMessages"/>).
    /// </summary>
    Task HandleAsync(ReceivedMessage message, CancellationToken cancellationToken);
}

/// <summary>Thrown by a handler to dead-letter a message at once instead of retrying it.</summary>
public sealed class DeadLetterException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The idempotency helper: remembers which message ids a group has handled, so a redelivery (a
/// lease that ran out while the handler was slow, an ack lost with the connection) is acknowledged
/// without running the handler again. The default keeps the last <see cref="ConsumerOptions.RememberHandled"/>
/// ids per group in memory, which covers redeliveries to the same process; register your own
/// implementation (in the database your handler writes to, in the same transaction) to cover every replica and restarts.
/// </summary>
public interface IProcessedMessages
{
    /// <summary>Whether <paramref name="messageId"/> was handled by <paramref name="group"/> of <paramref name="topic"/>.</summary>
    ValueTask<bool> WasHandledAsync(string topic, string group, string messageId, CancellationToken cancellationToken);

    /// <summary>Records that it was handled.</summary>
    ValueTask MarkHandledAsync(string topic, string group, string messageId, CancellationToken cancellationToken);
}

/// <summary>How a hosted consumer of a bus group pulls (see <see cref="PullConsumerOptions"/>).</summary>
public sealed class ConsumerOptions : PullConsumerOptions
{
    /// <summary>Handled message ids the default <see cref="IProcessedMessages"/> remembers per group. Default 10,000.</summary>
    public int RememberHandled { get; set; } = 10_000;
}

/// <summary>The default <see cref="IProcessedMessages"/>: the most recent ids per group, in memory.</summary>
internal sealed class InMemoryProcessedMessages(int capacity = 10_000) : IProcessedMessages
{
    private readonly ConcurrentDictionary<(string, string), Window> _groups = new();

    public ValueTask<bool> WasHandledAsync(string topic, string group, string messageId, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_groups.TryGetValue((topic, group), out var window) && window.Contains(messageId));

    public ValueTask MarkHandledAsync(string topic, string group, string messageId, CancellationToken cancellationToken)
    {
        _groups.GetOrAdd((topic, group), _ => new Window(capacity)).Add(messageId);
        return ValueTask.CompletedTask;
    }

    private sealed class Window(int capacity)
    {
        private readonly HashSet<string> _ids = new(StringComparer.Ordinal);
        private readonly Queue<string> _order = new();

        public bool Contains(string id)
        {
            lock (_ids)
            {
                return _ids.Contains(id);
            }
        }

        public void Add(string id)
        {
            lock (_ids)
            {
                if (!_ids.Add(id))
                {
                    return;
                }
                _order.Enqueue(id);
                while (_order.Count > capacity)
                {
                    _ids.Remove(_order.Dequeue());
                }
            }
        }
    }
}

/// <summary>
/// Consumes one consumer group in the background: ensures the group exists, pulls (long-poll),
/// hands each message to a scoped <typeparamref name="THandler"/>, acknowledges what was handled and
/// gives back what threw, with the exception's type and message. An ordered group never hands out
/// two messages of one key at once, so a failure holds back only its key. While Fundament is
/// unreachable or refuses, it backs off and retries; messages it held when the process died come
/// back after their lease.
/// </summary>
internal sealed partial class MessageConsumerWorker<THandler>(
    IFundamentBus bus, IServiceScopeFactory scopes, IProcessedMessages processed, ConsumerGroupSettings settings, ConsumerOptions options,
    TimeProvider time, ILogger<MessageConsumerWorker<THandler>> logger) : PullConsumerWorker(time, options.MaxBackoff)
    where THandler : class, IMessageHandler
{
    protected override Task EnsureAsync(CancellationToken stoppingToken) => bus.EnsureGroupAsync(settings, stoppingToken);

    protected override async Task RoundAsync(CancellationToken stoppingToken) =>
        await HandleAsync(await bus.PullAsync(settings.Topic, settings.Group, options.BatchSize, options.Wait, options.Lease, stoppingToken).ConfigureAwait(false), stoppingToken).ConfigureAwait(false);

    // The group was deleted meanwhile: created again on the next round (receiving from then on).
    protected override void OnRoundFailed(TimeSpan pause, Exception exception) => LogRoundFailed(settings.Topic, settings.Group, pause, exception);

    private async Task HandleAsync(IReadOnlyList<ReceivedMessage> batch, CancellationToken stoppingToken)
    {
        var handled = new List<string>(batch.Count);
        try
        {
            for (var i = 0; i < batch.Count; i++)
            {
                var message = batch[i];
                if (stoppingToken.IsCancellationRequested)
                {
                    await ReleaseAsync(batch.Skip(i)).ConfigureAwait(false);
                    return;
                }
                if (await processed.WasHandledAsync(message.Topic, settings.Group, message.Id, stoppingToken).ConfigureAwait(false))
                {
                    handled.Add(message.LeaseId);
                    continue;
                }
                await using var scope = scopes.CreateAsyncScope();
                // Outside the handler's try: a handler that cannot be built is not the message's fault,
                // so the batch goes back untried (no attempt used up, nothing dead-lettered) and the round fails.
                THandler handler;
                try
                {
                    handler = scope.ServiceProvider.GetRequiredService<THandler>();
                }
                catch
                {
                    await ReleaseAsync(batch.Skip(i)).ConfigureAwait(false);
                    throw;
                }
                try
                {
                    await handler.HandleAsync(message, stoppingToken).ConfigureAwait(false);
                    await processed.MarkHandledAsync(message.Topic, settings.Group, message.Id, CancellationToken.None).ConfigureAwait(false);
                    handled.Add(message.LeaseId);
                }
                catch (Exception ex) when (!(ex is OperationCanceledException && stoppingToken.IsCancellationRequested))
                {
                    LogHandlerFailed(settings.Topic, settings.Group, message.Id, message.Attempt, ex);
                    await bus.NackAsync(settings.Topic, settings.Group, message.LeaseId, $"{ex.GetType().FullName}: {ex.Message}", ex.GetType().FullName,
                        deadLetter: ex is DeadLetterException, CancellationToken.None).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    await ReleaseAsync(batch.Skip(i)).ConfigureAwait(false);
                    return;
                }
            }
        }
        finally
        {
            // Acknowledged even while stopping: the work is done, and a redelivery would repeat it.
            if (handled.Count > 0)
            {
                var stale = await bus.AckAsync(settings.Topic, settings.Group, handled, CancellationToken.None).ConfigureAwait(false);
                if (stale.Count > 0)
                {
                    LogStale(settings.Topic, settings.Group, stale.Count);
                }
            }
        }
    }

    private async Task ReleaseAsync(IEnumerable<ReceivedMessage> untried)
    {
        var leaseIds = untried.Select(m => m.LeaseId).ToList();
        if (leaseIds.Count > 0)
        {
            await bus.ReleaseAsync(settings.Topic, settings.Group, leaseIds, CancellationToken.None).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Consumer group {Group} of {Topic}: a round failed; trying again in {Pause}")]
    private partial void LogRoundFailed(string topic, string group, TimeSpan pause, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Consumer group {Group} of {Topic}: handling message {MessageId} failed on attempt {Attempt}")]
    private partial void LogHandlerFailed(string topic, string group, string messageId, int attempt, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Consumer group {Group} of {Topic}: {Count} messages were handled after their lease ran out and may be handled again elsewhere; raise the lease or shrink the batch")]
    private partial void LogStale(string topic, string group, int count);
}
