namespace Fundament.Alerts;

/// <summary>The condition kinds the modules of this host contribute (<see cref="IAlertConditionSource"/>), by kind.</summary>
internal sealed class AlertConditions
{
    private readonly Dictionary<string, IAlertConditionSource> _byKind = new(StringComparer.Ordinal);

    public AlertConditions(IEnumerable<IAlertConditionSource> sources)
    {
        var kinds = new List<AlertConditionKind>();
        foreach (var source in sources)
        {
            foreach (var kind in source.Kinds)
            {
                if (!_byKind.TryAdd(kind.Kind, source))
                {
                    throw new InvalidOperationException($"Alert condition '{kind.Kind}' is contributed twice.");
                }
                kinds.Add(kind);
            }
        }
        Kinds = kinds.OrderBy(k => k.Kind, StringComparer.Ordinal).ToList();
    }

    public IReadOnlyList<AlertConditionKind> Kinds { get; }

    public bool IsKnown(string? kind) => kind is not null && _byKind.ContainsKey(kind);

    /// <summary>Where <paramref name="kind"/> holds now; null when no module of this host contributes it.</summary>
    public async Task<IReadOnlyList<AlertCondition>?> EvaluateAsync(string kind, string? service, CancellationToken cancellationToken) =>
        _byKind.TryGetValue(kind, out var source) ? await source.EvaluateAsync(kind, service, cancellationToken) : null;
}
