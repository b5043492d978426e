using System.Text.Json;
using System.Text.Json.Nodes;
using Fundament.Events.Storage;

namespace Fundament.Events.Upcasting;

/// <summary>
/// Applies each type's upcasts to events as they are read (stream reads, <c>$all</c>, pulls, the
/// event stream and parked lists): a reader always sees the current shape, whatever version an
/// event was written in. Upcasts are looked up per page read, so a change saved on one node holds
/// on every node from the next read. An event an upcast cannot apply to is served unchanged at its
/// stored schema version (and logged); the dry run finds those before a deploy.
/// </summary>
internal sealed partial class EventUpcaster(UpcastStore store, ILogger<EventUpcaster> logger)
{
    public async Task<IReadOnlyList<RecordedEvent>> ApplyAsync(IReadOnlyList<RecordedEvent> events, CancellationToken cancellationToken)
    {
        if (events.Count == 0)
        {
            return events;
        }
        var upcasts = await store.GetManyAsync(events.Select(e => e.Type).ToHashSet(StringComparer.Ordinal), cancellationToken);
        if (upcasts.Count == 0)
        {
            return events;
        }
        var chains = upcasts.ToDictionary(u => u.Key, u => new UpcastChain(u.Value.Steps), StringComparer.Ordinal);
        return events.Select(e => chains.TryGetValue(e.Type, out var chain) ? Apply(e, chain) : e).ToList();
    }

    public async Task<IReadOnlyList<T>> ApplyAsync<T>(IReadOnlyList<T> items, Func<T, RecordedEvent> get, Func<T, RecordedEvent, T> set, CancellationToken cancellationToken)
    {
        var upcast = await ApplyAsync(items.Select(get).ToList(), cancellationToken);
        return items.Select((item, i) => ReferenceEquals(upcast[i], get(item)) ? item : set(item, upcast[i])).ToList();
    }

    private RecordedEvent Apply(RecordedEvent e, UpcastChain chain)
    {
        if (e.SchemaVersion >= chain.CurrentVersion)
        {
            return e;
        }
        try
        {
            return e with { Data = Upcast(e.Data, e.SchemaVersion, chain), SchemaVersion = chain.CurrentVersion };
        }
        catch (Exception failed) when (failed is not OperationCanceledException)
        {
            // Not only the chain's own failures: data the parser accepted on append (duplicate keys) or
            // a result nested too deep must not make the read fail for every reader of the event.
            LogUpcastFailed(e.Type, e.Stream, e.Version, e.SchemaVersion, failed.Message);
            return e;
        }
    }

    /// <summary><paramref name="data"/> brought to the chain's current version; throws <see cref="UpcastFailedException"/>, or what the JSON layer throws on data it cannot rewrite.</summary>
    public static JsonElement Upcast(JsonElement data, int schemaVersion, UpcastChain chain) =>
        JsonSerializer.SerializeToElement(chain.Apply(JsonNode.Parse(data.GetRawText()), schemaVersion));

    [LoggerMessage(Level = LogLevel.Warning, Message = "Event {Type} at {Stream}@{Version} (schema version {SchemaVersion}) served without upcasting: {Reason}")]
    private partial void LogUpcastFailed(string type, string stream, long version, int schemaVersion, string reason);
}
