using System.Text.Json;

namespace Fundament.Client.Events;

/// <summary>An event as Fundament stores and serves it.</summary>
/// <param name="Id">The id its writer gave it.</param>
/// <param name="Stream">The stream it belongs to.</param>
/// <param name="Version">Its version in the stream (the first event is 0).</param>
/// <param name="Position">Its global position, in the order of <c>$all</c>.</param>
/// <param name="Type">The event type name.</param>
/// <param name="Data">Its data as JSON; <see cref="Deserialize()"/> gives the mapped .NET type.</param>
/// <param name="Metadata">Its metadata object, if it has one.</param>
/// <param name="RecordedAt">When it was appended.</param>
/// <param name="SchemaVersion">The version of <paramref name="Data"/>'s shape as served (after the server's declarative upcasts).</param>
public sealed record StoredEvent(string Id, string Stream, long Version, long Position, string Type, int SchemaVersion, JsonElement Data, JsonElement? Metadata, DateTimeOffset RecordedAt)
{
    internal EventTypeMap? Map { get; init; }

    /// <summary>
    /// The data as the .NET type mapped to <see cref="Type"/> (see <see cref="EventTypeMap"/>),
    /// upcast by the service's typed upcasters when it is older; null when the type is not mapped.
    /// </summary>
    /// <exception cref="EventVersionException">Older than the mapped version, and no upcaster covers it.</exception>
    public object? Deserialize() => Map?.Deserialize(this);

    /// <summary>The data as <typeparamref name="T"/>, through <see cref="Deserialize()"/>; default when it is another type.</summary>
    public T? As<T>() => Deserialize() is T value ? value : default;
}

/// <summary>An event to append: a value of a mapped type, with its id (chosen by the writer, so a retry appends nothing twice).</summary>
/// <param name="Value">An instance of a type mapped in <see cref="EventTypeMap"/>.</param>
/// <param name="Id">Default: a new UUID v7. Pass a stable id to make a retried append idempotent across process restarts.</param>
/// <param name="Metadata">Correlation ids and the like.</param>
public sealed record EventData(object Value, string? Id = null, IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>Where an append landed.</summary>
/// <param name="Stream">The stream appended to.</param>
/// <param name="FromVersion">Version of the first event appended.</param>
/// <param name="ToVersion">Version of the last: pass it as <see cref="ExpectedVersion.Exactly"/> to append after it.</param>
/// <param name="Position">Global position of the last.</param>
/// <param name="Written">False when the same event ids were appended before (a retry): nothing was appended twice.</param>
public sealed record AppendResult(string Stream, long FromVersion, long ToVersion, long Position, bool Written);

/// <summary>A stream's latest snapshot.</summary>
/// <param name="Stream">The stream.</param>
/// <param name="Version">The stream version the state reflects; read on from the version after it.</param>
/// <param name="State">The state.</param>
/// <param name="RecordedAt">When it was saved.</param>
public sealed record Snapshot<T>(string Stream, long Version, T State, DateTimeOffset RecordedAt);

/// <summary>A version conflict: the stream was not at the expected version.</summary>
public sealed class WrongExpectedVersionException(string stream, long actualVersion)
    : Exception(actualVersion < 0 ? $"Stream '{stream}' does not exist." : $"Stream '{stream}' is at version {actualVersion}.")
{
    /// <summary>The stream.</summary>
    public string Stream { get; } = stream;

    /// <summary>Its version when the append was refused; -1 when it has no events.</summary>
    public long ActualVersion { get; } = actualVersion;
}

/// <summary>An event handed to this consumer under a lease.</summary>
/// <param name="Event">The event.</param>
/// <param name="LeaseId">Acknowledge (or give back) the event with this.</param>
/// <param name="Attempt">1 on the first delivery.</param>
/// <param name="LeaseExpiresAt">After this the event goes to another consumer.</param>
public sealed record LeasedEvent(StoredEvent Event, string LeaseId, int Attempt, DateTimeOffset LeaseExpiresAt);

/// <summary>A durable subscription to create (or find) on Fundament.</summary>
/// <param name="Name">Unique on the server; 1-100 letters, digits, '.', '_', ':' and '-'.</param>
/// <param name="StreamPrefix">Only streams starting with this (the service needs read on every stream it covers).</param>
/// <param name="Type">Only events of this type.</param>
/// <param name="From"><c>start</c>, <c>end</c> or a position.</param>
/// <param name="Mode"><c>catchup</c>: in order, one batch at a time; <c>competing</c>: spread over every replica that pulls.</param>
/// <param name="MaxAttempts">Deliveries before an event is parked.</param>
public sealed record SubscriptionSettings(string Name, string? StreamPrefix = null, string? Type = null, string From = "start", string Mode = "catchup", int MaxAttempts = 5);
