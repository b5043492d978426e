using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Fundament.Events.Storage;

namespace Fundament.Events;

/// <summary>
/// <c>fundament_events_subscription_lag_events{subscription}</c> and
/// <c>fundament_events_subscription_lag_seconds{subscription}</c>, plus parked events per
/// subscription, measured every <see cref="EventsOptions.LagInterval"/>.
/// </summary>
internal sealed partial class SubscriptionMetrics : BackgroundService
{
    /// <summary>Subscriptions measured per pass; beyond it the metrics name the first ones by name.</summary>
    private const int MaxMeasured = 1000;

    private readonly SubscriptionStore _store;
    private readonly IOptions<EventsOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<SubscriptionMetrics> _logger;
    private volatile IReadOnlyList<(string Name, SubscriptionProgress Progress)> _snapshot = [];

    public SubscriptionMetrics(SubscriptionStore store, IOptions<EventsOptions> options, TimeProvider time, IMeterFactory meters, ILogger<SubscriptionMetrics> logger)
    {
        (_store, _options, _time, _logger) = (store, options, time, logger);
        var meter = meters.Create("Fundament.Events");
        meter.CreateObservableGauge("fundament.events.subscription.lag_events", () => _snapshot.Select(s => new Measurement<long>(s.Progress.LagEvents, new KeyValuePair<string, object?>("subscription", s.Name))),
            "{event}", "Positions of $all between a subscription's checkpoint and the head.");
        meter.CreateObservableGauge("fundament.events.subscription.lag_seconds", () => _snapshot.Select(s => new Measurement<double>(s.Progress.LagSeconds, new KeyValuePair<string, object?>("subscription", s.Name))),
            "s", "Age of the oldest event a subscription has not had acknowledged.");
        meter.CreateObservableGauge("fundament.events.subscription.parked", () => _snapshot.Select(s => new Measurement<long>(s.Progress.Parked, new KeyValuePair<string, object?>("subscription", s.Name))),
            "{event}", "Events parked by a subscription and not replayed.");
    }

    /// <summary>Measures every subscription now.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var measured = new List<(string, SubscriptionProgress)>();
        foreach (var subscription in await _store.ListAsync(null, MaxMeasured, cancellationToken))
        {
            measured.Add((subscription.Name, await _store.ProgressAsync(subscription, cancellationToken)));
        }
        _snapshot = measured;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Value.LagInterval, _time);
        do
        {
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogMeasureFailed(ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Measuring subscription lag failed; the metrics keep their last values")]
    private partial void LogMeasureFailed(Exception exception);
}
