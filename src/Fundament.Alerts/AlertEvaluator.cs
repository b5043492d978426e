using System.Diagnostics.Metrics;
using System.Text.Json;
using Fundament.Delivery;
using Microsoft.Extensions.Hosting;

namespace Fundament.Alerts;

/// <summary>
/// Evaluates the rules against the platform's state every interval, on one replica at a time (the
/// one holding the <c>alerts-evaluator</c> lease). A condition opens a pending alert; once it has
/// held for the rule's <c>for</c> the alert fires; when it stops holding a firing alert resolves.
/// Each firing and resolution is handed to the durable delivery queue for every enabled channel and,
/// separately, published as domain event <c>alert.firing</c> or <c>alert.resolved</c> (on the bus;
/// audience <c>system</c>), outbox-style: an alert remembers the last state it notified and the last
/// it announced, so a crash between the change and either hand-over repeats it rather than losing it,
/// and a bus that is away holds back no channel.
/// </summary>
internal sealed partial class AlertEvaluator : BackgroundService
{
    public const string LeaseName = "alerts-evaluator";

    private readonly AlertStore _store;
    private readonly IDeliveryQueue _deliveries;
    private readonly IEventPublisher _events;
    private readonly LeaseStore _leases;
    private readonly AlertConditions _conditions;
    private readonly HashSet<string> _unknownKindReported = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly IOptions<AlertsOptions> _options;
    private readonly ILogger<AlertEvaluator> _logger;
    private readonly Counter<long> _notifications;
    private volatile IReadOnlyList<AlertStore.AlertRow> _open = [];

    /// <summary>The audience of alert events: the platform, not one tenant.</summary>
    public const string Audience = "system";

    public AlertEvaluator(AlertStore store, IDeliveryQueue deliveries, IEventPublisher events, LeaseStore leases, AlertConditions conditions, TimeProvider time,
        IOptions<AlertsOptions> options, IMeterFactory meters, ILogger<AlertEvaluator> logger)
    {
        _store = store;
        _deliveries = deliveries;
        _events = events;
        _leases = leases;
        _conditions = conditions;
        _time = time;
        _options = options;
        _logger = logger;
        var meter = meters.Create("Fundament.Alerts");
        meter.CreateObservableGauge("fundament.alerts.open", ObserveOpen, "{alert}", "Open alerts by rule and state.");
        _notifications = meter.CreateCounter<long>("fundament.alerts.notifications", "{notification}", "Notifications handed to delivery, by state.");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Value.EvaluationInterval, _time);
        do
        {
            try
            {
                if (await _leases.TryAcquireAsync(LeaseName, _options.Value.EvaluationInterval * 3, stoppingToken))
                {
                    await EvaluateAsync(stoppingToken);
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogEvaluationFailed(_logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One evaluation of every enabled rule, then the notification outbox.</summary>
    public async Task EvaluateAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var rules = (await _store.RulesAsync(cancellationToken)).Where(r => r.Enabled).ToList();
        var conditions = new Dictionary<string, Condition>(StringComparer.Ordinal);
        foreach (var rule in rules)
        {
            foreach (var condition in await ConditionsAsync(rule, cancellationToken))
            {
                conditions[condition.Fingerprint] = condition;
            }
        }

        var open = (await _store.OpenAlertsAsync(cancellationToken)).ToDictionary(a => a.Fingerprint, StringComparer.Ordinal);
        foreach (var condition in conditions.Values)
        {
            if (!open.TryGetValue(condition.Fingerprint, out var alert))
            {
                await _store.OpenAsync(condition.Rule.Id, condition.Fingerprint, condition.Subject, condition.Rule.Severity, condition.Summary, condition.Since ?? now, cancellationToken);
                continue;
            }
            var heldFor = now - DateTimeOffset.FromUnixTimeMilliseconds(alert.StartedAt);
            if (alert.State == AlertState.Pending && heldFor >= TimeSpan.FromMilliseconds(condition.Rule.ForMs))
            {
                await _store.TransitionAsync(alert.Id, AlertState.Firing, condition.Summary, cancellationToken);
                LogFiring(_logger, condition.Rule.Id, condition.Subject, condition.Summary);
            }
        }
        foreach (var alert in open.Values.Where(a => !conditions.ContainsKey(a.Fingerprint)))
        {
            await _store.TransitionAsync(alert.Id, AlertState.Resolved, alert.Summary, cancellationToken);
            if (alert.State == AlertState.Firing)
            {
                LogResolved(_logger, alert.RuleId, alert.Subject);
            }
        }
        // A condition first seen with an old start (an instance critical for an hour) may fire in the same pass.
        foreach (var alert in await _store.OpenAlertsAsync(cancellationToken))
        {
            if (alert.State == AlertState.Pending && conditions.TryGetValue(alert.Fingerprint, out var c) &&
                now - DateTimeOffset.FromUnixTimeMilliseconds(alert.StartedAt) >= TimeSpan.FromMilliseconds(c.Rule.ForMs))
            {
                await _store.TransitionAsync(alert.Id, AlertState.Firing, c.Summary, cancellationToken);
                LogFiring(_logger, c.Rule.Id, c.Subject, c.Summary);
            }
        }
        await NotifyAsync(cancellationToken);
        _open = await _store.OpenAlertsAsync(cancellationToken);
        await AnnounceAsync(cancellationToken);
    }

    /// <summary>
    /// Firings and resolutions as domain events, apart from the channels: a bus that is away (it is
    /// what a backend-down alert may be about) holds back nothing else, and they go out on a later pass.
    /// The event id names the alert and the transition, so a repeat is a duplicate on the bus.
    /// </summary>
    private async Task AnnounceAsync(CancellationToken cancellationToken)
    {
        try
        {
            foreach (var alert in await _store.UnannouncedAsync(cancellationToken))
            {
                var firing = alert.State == AlertState.Firing;
                var at = (firing ? alert.FiredAt : alert.ResolvedAt) ?? alert.StartedAt;
                await _events.PublishAsync(firing ? AlertEvents.Firing : AlertEvents.Resolved, Audience, alert.ToResponse(), cancellationToken,
                    eventId: $"alert-{alert.Id}-{alert.State}-{at}");
                await _store.MarkAnnouncedAsync(alert.Id, alert.State, cancellationToken);
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            LogAnnounceFailed(_logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Publishing alert events on the bus failed; channels were notified, the events go out on a later pass")]
    private static partial void LogAnnounceFailed(ILogger logger, Exception exception);

    private async Task NotifyAsync(CancellationToken cancellationToken)
    {
        var pending = await _store.UnnotifiedAsync(cancellationToken);
        if (pending.Count == 0)
        {
            return;
        }
        var channels = (await _store.ChannelsAsync(cancellationToken)).Where(c => c.Enabled).ToList();
        foreach (var alert in pending)
        {
            var evt = alert.State == AlertState.Firing ? AlertEvents.Firing : AlertEvents.Resolved;
            foreach (var channel in channels)
            {
                string? secret;
                try
                {
                    secret = _store.SecretOf(channel);
                }
                catch (System.Security.Cryptography.CryptographicException ex)
                {
                    // One broken channel must not block (or endlessly repeat) the others.
                    LogChannelSecretFailed(_logger, channel.Name, ex);
                    continue;
                }
                var text = $"[{alert.State.ToUpperInvariant()}] {alert.Summary}";
                var payload = channel.Kind == DeliveryKind.Webhook
                    ? JsonSerializer.Serialize(new { @event = evt, alert = alert.ToResponse() }, JsonSerializerOptions.Web)
                    : text;
                await _deliveries.EnqueueAsync(new DeliveryRequest(channel.Kind, channel.Target, evt, payload,
                    Subject: $"[Fundament] {text}", Secret: secret, Source: $"alert:{alert.Id}"), cancellationToken);
            }
            await _store.MarkNotifiedAsync(alert.Id, alert.State, cancellationToken);
            _notifications.Add(1, new KeyValuePair<string, object?>("state", alert.State));
        }
    }

    private async Task<IReadOnlyList<Condition>> ConditionsAsync(AlertStore.RuleRow rule, CancellationToken cancellationToken)
    {
        if (await _conditions.EvaluateAsync(rule.Kind, rule.Service, cancellationToken) is not { } found)
        {
            // A rule made on a host with a module this one lacks: said once per rule, not silently skipped.
            if (_unknownKindReported.Add(rule.Id))
            {
                LogUnknownKind(_logger, rule.Id, rule.Kind);
            }
            return [];
        }
        return found.Select(c => new Condition(rule, c.Subject, c.Summary, c.Since)).ToList();
    }

    private IEnumerable<Measurement<long>> ObserveOpen() =>
        _open.GroupBy(a => (a.RuleId, a.State)).Select(g => new Measurement<long>(g.Count(), new("rule", g.Key.RuleId), new("state", g.Key.State)));

    private sealed record Condition(AlertStore.RuleRow Rule, string Subject, string Summary, DateTimeOffset? Since)
    {
        public string Fingerprint => $"{Rule.Id}|{Subject}";
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "The secret of alert channel {Channel} cannot be decrypted; the channel is skipped")]
    private static partial void LogChannelSecretFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Alert rule {RuleId} watches condition {Kind}, which no module of this node contributes; the rule is not evaluated here")]
    private static partial void LogUnknownKind(ILogger logger, string ruleId, string kind);

    [LoggerMessage(Level = LogLevel.Error, Message = "Alert evaluation failed")]
    private static partial void LogEvaluationFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Alert firing: rule {RuleId}, {Subject}: {Summary}")]
    private static partial void LogFiring(ILogger logger, string ruleId, string subject, string summary);

    [LoggerMessage(Level = LogLevel.Information, Message = "Alert resolved: rule {RuleId}, {Subject}")]
    private static partial void LogResolved(ILogger logger, string ruleId, string subject);
}
