using System.Diagnostics.Metrics;
using Fundament.Messaging.Storage;
using Microsoft.Extensions.Hosting;

namespace Fundament.Messaging;

/// <summary>
/// Counters as things happen (<c>fundament_messaging_published_total{topic}</c>,
/// <c>..._dead_lettered_total{topic,group}</c>, <c>..._dropped_total{topic,group}</c>) and, every
/// <see cref="MessagingOptions.MeasureInterval"/>, gauges per group (<c>..._backlog</c>,
/// <c>..._dead_letters</c>, <c>..._oldest_seconds</c>). The same pass feeds the publish limit
/// (<see cref="MessagingOptions.MaxMessagesPerGroup"/>) and removes consumed messages past the dedupe window.
/// </summary>
internal sealed partial class MessagingMetrics : BackgroundService
{
    private const int ReapBatch = 5000;

    private readonly MessageStore _store;
    private readonly IOptions<MessagingOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<MessagingMetrics> _logger;
    private readonly Counter<long> _published;
    private readonly Counter<long> _deadLettered;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _pushes;
    private volatile IReadOnlyList<GroupCounts> _snapshot = [];
    private volatile IReadOnlySet<string> _fullTopics = new HashSet<string>(StringComparer.Ordinal);

    public MessagingMetrics(MessageStore store, IOptions<MessagingOptions> options, TimeProvider time, IMeterFactory meters, ILogger<MessagingMetrics> logger)
    {
        (_store, _options, _time, _logger) = (store, options, time, logger);
        var meter = meters.Create("Fundament.Messaging");
        _published = meter.CreateCounter<long>("fundament.messaging.published", "{message}", "Messages accepted for a topic (duplicates not counted).");
        _deadLettered = meter.CreateCounter<long>("fundament.messaging.dead_lettered", "{message}", "Messages a group gave up on and kept as dead letters.");
        _dropped = meter.CreateCounter<long>("fundament.messaging.dropped", "{message}", "Messages out of attempts in a group that keeps no dead letters.");
        _pushes = meter.CreateCounter<long>("fundament.messaging.pushes", "{attempt}", "Push attempts of push groups by topic and outcome (delivered, failed).");
        meter.CreateObservableGauge("fundament.messaging.backlog", () => Measure(c => c.Ready + c.Leased), "{message}", "Messages a group has not acknowledged, dead letters aside.");
        meter.CreateObservableGauge("fundament.messaging.dead_letters", () => Measure(c => c.Dead), "{message}", "Dead letters a group holds (not replayed or purged).");
        meter.CreateObservableGauge("fundament.messaging.oldest_seconds", () => _snapshot.Select(c => new Measurement<double>(
            c.OldestPublishedAt is { } at ? Math.Max(0, (_time.GetUtcNow() - at).TotalSeconds) : 0, Tags(c.Topic, c.Group))), "s", "Age of the oldest message a group has not acknowledged.");
    }

    private IEnumerable<Measurement<long>> Measure(Func<GroupCounts, long> value) => _snapshot.Select(c => new Measurement<long>(value(c), Tags(c.Topic, c.Group)));

    private static KeyValuePair<string, object?>[] Tags(string topic, string group) => [new("topic", topic), new("group", group)];

    public void Published(string topic, int count) => _published.Add(count, new KeyValuePair<string, object?>("topic", topic));

    /// <summary>Push attempts of one pass on one group.</summary>
    public void Pushed(string topic, int delivered, int failed)
    {
        if (delivered > 0)
        {
            _pushes.Add(delivered, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("outcome", "delivered"));
        }
        if (failed > 0)
        {
            _pushes.Add(failed, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("outcome", "failed"));
        }
    }

    public void Settled(string topic, string group, int deadLettered, int dropped)
    {
        if (deadLettered > 0)
        {
            _deadLettered.Add(deadLettered, Tags(topic, group));
        }
        if (dropped > 0)
        {
            _dropped.Add(dropped, Tags(topic, group));
            LogDropped(dropped, topic, group);
        }
    }

    /// <summary>Whether a group of <paramref name="topic"/> held more than <see cref="MessagingOptions.MaxMessagesPerGroup"/> when last measured.</summary>
    public bool IsFull(string topic) => _fullTopics.Contains(topic);

    /// <summary>Measures every group and removes what is past the dedupe window, now.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var options = _options.Value;
        var counts = await _store.CountsAsync(null, null, cancellationToken);
        _snapshot = counts;
        _fullTopics = counts.Where(c => c.Ready + c.Leased + c.Dead >= options.MaxMessagesPerGroup).Select(c => c.Topic).ToHashSet(StringComparer.Ordinal);
        var before = _time.GetUtcNow() - options.DedupeWindow;
        while (await _store.ReapAsync(before, ReapBatch, cancellationToken) >= ReapBatch && !cancellationToken.IsCancellationRequested)
        {
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Value.MeasureInterval, _time);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Measuring message backlogs failed; the metrics and the publish limit keep their last values")]
    private partial void LogMeasureFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dropped {Count} message(s) of topic {Topic} out of attempts: group {Group} keeps no dead letters")]
    private partial void LogDropped(int count, string topic, string group);
}
