using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Fundament.Client.Events;

/// <summary>Handles the events of one subscription; registered with <c>AddFundamentSubscription</c>.</summary>
public interface IEventHandler
{
    /// <summary>
    /// Handles one event. Returning acknowledges it; throwing gives it back to be retried with
    /// backoff, and Fundament parks it after the subscription's maxAttempts. Throw
    /// <see cref="ParkEventException"/> to park it at once (a poison message no retry will fix).
    /// Delivery is at least once: make handling idempotent (<see cref="StoredEvent.Id"/> is stable).
    /// </summary>
    Task HandleAsync(StoredEvent e, CancellationToken cancellationToken);
}

/// <summary>Thrown by a handler to park an event at once instead of retrying it.</summary>
public sealed class ParkEventException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>How a hosted subscription consumer pulls (see <see cref="PullConsumerOptions"/>).</summary>
public sealed class SubscriptionConsumerOptions : PullConsumerOptions;

/// <summary>
/// Consumes one subscription in the background: ensures it exists, pulls (long-poll), hands each
/// event to a scoped <typeparamref name="THandler"/> in order, acknowledges what was handled and
/// gives back what threw, with the exception's type and message as the reason. In catchup mode the
/// first failure ends the batch and the events after it go back untried, so the handler never sees
/// an event before the ones that precede it. While Fundament is unreachable or refuses, it backs
/// off and retries; events it held when the process died come back after their lease.
/// </summary>
internal sealed partial class EventSubscriptionWorker<THandler>(
    IEventStore store, IServiceScopeFactory scopes, SubscriptionSettings settings, SubscriptionConsumerOptions options,
    TimeProvider time, ILogger<EventSubscriptionWorker<THandler>> logger) : PullConsumerWorker(time, options.MaxBackoff)
    where THandler : class, IEventHandler
{
    private readonly bool _inOrder = settings.Mode != "competing";

    protected override Task EnsureAsync(CancellationToken stoppingToken) => store.EnsureSubscriptionAsync(settings, stoppingToken);

    protected override async Task RoundAsync(CancellationToken stoppingToken) =>
        await HandleAsync(await store.PullAsync(settings.Name, options.BatchSize, options.Wait, options.Lease, stoppingToken).ConfigureAwait(false), stoppingToken).ConfigureAwait(false);

    // Deleted meanwhile: created again on the next round (from settings.From, said loudly, since "start" replays the history to this handler).
    protected override void OnGone() => LogRecreating(settings.Name, settings.From);

    protected override void OnRoundFailed(TimeSpan pause, Exception exception) => LogRoundFailed(settings.Name, pause, exception);

    private async Task HandleAsync(IReadOnlyList<LeasedEvent> batch, CancellationToken stoppingToken)
    {
        var handled = new List<string>(batch.Count);
        try
        {
            for (var i = 0; i < batch.Count; i++)
            {
                var leased = batch[i];
                if (stoppingToken.IsCancellationRequested)
                {
                    await ReleaseAsync(batch.Skip(i)).ConfigureAwait(false);
                    return;
                }
                await using var scope = scopes.CreateAsyncScope();
                // Outside the handler's try: a handler that cannot be built is not the event's fault,
                // so the batch goes back untried (no attempt used up, nothing parked) and the round fails.
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
                    await handler.HandleAsync(leased.Event, stoppingToken).ConfigureAwait(false);
                    handled.Add(leased.LeaseId);
                }
                catch (Exception ex) when (!(ex is OperationCanceledException && stoppingToken.IsCancellationRequested))
                {
                    // What was handled before it is acknowledged first.
                    await AckAsync(handled).ConfigureAwait(false);
                    handled.Clear();
                    LogHandlerFailed(settings.Name, leased.Event.Type, leased.Event.Stream, leased.Event.Version, leased.Attempt, ex);
                    await store.NackAsync(settings.Name, [leased.LeaseId], $"{ex.GetType().FullName}: {ex.Message}", park: ex is ParkEventException, CancellationToken.None).ConfigureAwait(false);
                    if (_inOrder)
                    {
                        await ReleaseAsync(batch.Skip(i + 1)).ConfigureAwait(false);
                        return;
                    }
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
            await AckAsync(handled).ConfigureAwait(false);
        }
    }

    private async Task ReleaseAsync(IEnumerable<LeasedEvent> untried)
    {
        var leaseIds = untried.Select(l => l.LeaseId).ToList();
        if (leaseIds.Count > 0)
        {
            await store.ReleaseAsync(settings.Name, leaseIds, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task AckAsync(List<string> leaseIds)
    {
        if (leaseIds.Count == 0)
        {
            return;
        }
        var stale = await store.AckAsync(settings.Name, leaseIds, CancellationToken.None).ConfigureAwait(false);
        leaseIds.Clear();
        if (stale.Count > 0)
        {
            LogStale(settings.Name, stale.Count);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Subscription {Subscription} is gone on the server; creating it again from {From}")]
    private partial void LogRecreating(string subscription, string from);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Subscription {Subscription}: a round failed; trying again in {Pause}")]
    private partial void LogRoundFailed(string subscription, TimeSpan pause, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Subscription {Subscription}: handling {Type} {Stream}@{Version} failed on attempt {Attempt}")]
    private partial void LogHandlerFailed(string subscription, string type, string stream, long version, int attempt, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Subscription {Subscription}: {Count} events were handled after their lease ran out and may be handled again elsewhere; raise the lease or shrink the batch")]
    private partial void LogStale(string subscription, int count);
}
