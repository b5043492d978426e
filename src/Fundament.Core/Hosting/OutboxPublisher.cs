using Microsoft.Extensions.Hosting;

namespace Fundament.Core.Hosting;

/// <summary>
/// Drains a module's outbox of domain events on one node at a time: while this node holds the lease
/// <c>leaseName</c> (renewed before every batch, so a node that stalled past it stops and the other
/// goes on), it runs <see cref="PassAsync"/> until a pass finds nothing, then waits for
/// <see cref="NextChange"/> or a second. A failing pass is logged and tried again.
/// </summary>
public abstract partial class OutboxPublisher(LeaseStore leases, string leaseName, ILogger logger) : BackgroundService
{
    private static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(30);

    private static readonly Task Never = new TaskCompletionSource().Task;

    /// <summary>Publishes up to one batch of waiting events, oldest first; returns how many.</summary>
    public abstract Task<int> PassAsync(CancellationToken cancellationToken);

    /// <summary>Completes when this node records a change (wakes the publisher at once); other nodes' changes are found within a second.</summary>
    protected virtual Task NextChange() => Never;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var next = NextChange();
            try
            {
                while (await leases.TryAcquireAsync(leaseName, LeaseDuration, stoppingToken) && await PassAsync(stoppingToken) > 0)
                {
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(logger, leaseName, ex);
            }
            await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(1), stoppingToken));
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Publishing the events of outbox {Outbox} failed; the next pass tries again")]
    private static partial void LogPassFailed(ILogger logger, string outbox, Exception exception);
}
