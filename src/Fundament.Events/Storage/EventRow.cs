using System.Text.Json;

namespace Fundament.Events.Storage;

/// <summary>An <c>events_events</c> row as Dapper reads it.</summary>
internal class EventRow
{
    public string Id { get; init; } = "";
    public string Stream { get; init; } = "";
    public long Version { get; init; }
    public long Position { get; init; }
    public string Type { get; init; } = "";
    public int SchemaVersion { get; init; } = 1;
    public string Data { get; init; } = "null";
    public string? Metadata { get; init; }
    public long RecordedAt { get; init; }

    public RecordedEvent ToRecorded()
    {
        using var data = JsonDocument.Parse(Data);
        JsonElement? metadata = null;
        if (Metadata is not null)
        {
            using var m = JsonDocument.Parse(Metadata);
            metadata = m.RootElement.Clone();
        }
        return new RecordedEvent(Id, Stream, Version, Position, Type, SchemaVersion, data.RootElement.Clone(), metadata, DateTimeOffset.FromUnixTimeMilliseconds(RecordedAt));
    }
}
