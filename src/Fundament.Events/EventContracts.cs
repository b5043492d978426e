using System.Text.Json;

namespace Fundament.Events;

/// <summary>Body of <c>POST /api/v1/streams/{stream}/events</c>.</summary>
/// <param name="ExpectedVersion"><c>"any"</c>, <c>"no_stream"</c>, <c>"exists"</c>, or the version (number) the stream must be at.</param>
public sealed record AppendRequest(JsonElement? ExpectedVersion, IReadOnlyList<NewEvent>? Events);

/// <summary>One event to append.</summary>
/// <param name="Id">Chosen by the writer (a UUID is usual); sending the same ids again appends nothing and answers with the first result.</param>
/// <param name="Type">e.g. <c>OrderPlaced</c>.</param>
/// <param name="Data">Any JSON value.</param>
/// <param name="Metadata">An optional JSON object (correlation ids and the like).</param>
public sealed record NewEvent(string? Id, string? Type, JsonElement? Data, JsonElement? Metadata);

/// <summary>Body of <c>POST /api/v1/streams/events</c>: appends to several streams, all or nothing.</summary>
public sealed record MultiAppendRequest(IReadOnlyList<StreamAppendRequest>? Appends);

public sealed record StreamAppendRequest(string? Stream, JsonElement? ExpectedVersion, IReadOnlyList<NewEvent>? Events);

/// <summary>Where an append landed.</summary>
/// <param name="FromVersion">Version of the first event appended (a stream's first event is version 0).</param>
/// <param name="ToVersion">Version of the last.</param>
/// <param name="Position">Global position of the last, in the order of <c>$all</c>.</param>
public sealed record AppendResult(string Stream, long FromVersion, long ToVersion, long Position);

public sealed record MultiAppendResult(IReadOnlyList<AppendResult> Results);

/// <summary>A stored event.</summary>
public sealed record RecordedEvent(string Id, string Stream, long Version, long Position, string Type, JsonElement Data, JsonElement? Metadata, DateTimeOffset RecordedAt);

/// <summary>A page of events.</summary>
/// <param name="Next">For <c>$all</c>: the position to pass as <c>fromPosition</c> to continue; for a stream: the version to pass as <c>from</c>. Null at the end.</param>
public sealed record EventPage(IReadOnlyList<RecordedEvent> Events, long? Next);

/// <summary>A grant: <paramref name="Principal"/> (<c>user:&lt;id&gt;</c>, <c>client:&lt;id&gt;</c> or <c>role:&lt;name&gt;</c>) may use <paramref name="Capabilities"/> (read, append) on every stream starting with <paramref name="StreamPrefix"/>.</summary>
public sealed record StreamGrant(string Id, string Principal, string StreamPrefix, IReadOnlyList<string> Capabilities, DateTimeOffset CreatedAt, string? CreatedBy);

public sealed record StreamGrantRequest(string? Principal, string? StreamPrefix, IReadOnlyList<string>? Capabilities);
