using Fundament.Messaging.Storage;

namespace Fundament.Messaging;

/// <summary>What alert rules can watch on the bus: dead letters piling up.</summary>
internal sealed class MessagingAlertConditions(MessageStore store, IOptions<MessagingOptions> options, TimeProvider time) : IAlertConditionSource
{
    public const string DeadLettersGrowing = "dead_letters_growing";

    public IReadOnlyList<AlertConditionKind> Kinds { get; } =
    [
        new(DeadLettersGrowing, "A consumer group dead-lettered messages within Fundament:Messaging:DeadLetterAlertWindow (a rule's service narrows it to one topic).",
            new BuiltInAlertRule("dead-letters-growing", "A consumer group is dead-lettering messages", TimeSpan.Zero, "warning")),
    ];

    public async Task<IReadOnlyList<AlertCondition>> EvaluateAsync(string kind, string? service, CancellationToken cancellationToken)
    {
        if (kind != DeadLettersGrowing)
        {
            return [];
        }
        var since = time.GetUtcNow() - options.Value.DeadLetterAlertWindow;
        return (await store.DeadLetteredSinceAsync(since, cancellationToken))
            .Where(g => service is null || g.Topic == service)
            .Select(g => new AlertCondition($"consumer-group:{g.Topic}/{g.Group}",
                $"Group {g.Group} of topic {g.Topic} dead-lettered {g.Count} message(s) since {since:u}; see GET /api/v1/dead-letters?topic={g.Topic}&group={g.Group}.", g.First))
            .ToList();
    }
}
