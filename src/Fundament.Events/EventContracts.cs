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
/// <param name="SchemaVersion">The version of the type's data shape this event is written in (default 1); reads bring older versions up to date with the type's upcasts.</param>
public sealed record NewEvent(string? Id, string? Type, JsonElement? Data, JsonElement? Metadata, int? SchemaVersion = null);

/// <summary>Body of <c>POST /api/v1/streams/events</c>: appends to several streams, all or nothing.</summary>
public sealed record MultiAppendRequest(IReadOnlyList<StreamAppendRequest>? Appends);

public sealed record StreamAppendRequest(string? Stream, JsonElement? ExpectedVersion, IReadOnlyList<NewEvent>? Events);

/// <summary>Where an append landed.</summary>
/// <param name="FromVersion">Version of the first event appended (a stream's first event is version 0).</param>
/// <param name="ToVersion">Version of the last.</param>
/// <param name="Position">Global position of the last, in the order of <c>$all</c>.</param>
public sealed record AppendResult(string Stream, long FromVersion, long ToVersion, long Position);

public sealed record MultiAppendResult(IReadOnlyList<AppendResult> Results);

/// <summary>A stored event, as read: its data upcast to the type's current schema version.</summary>
/// <param name="SchemaVersion">The schema version of <paramref name="Data"/> as served: the type's current one, or the stored one when an upcast failed on this event (see the dry run).</param>
public sealed record RecordedEvent(string Id, string Stream, long Version, long Position, string Type, int SchemaVersion, JsonElement Data, JsonElement? Metadata, DateTimeOffset RecordedAt);

/// <summary>A page of events.</summary>
/// <param name="Next">For <c>$all</c>: the position to pass as <c>fromPosition</c> to continue; for a stream: the version to pass as <c>from</c>. Null at the end.</param>
/// <param name="Snapshot">With <c>fromSnapshot=true</c>: the stream's latest snapshot, which the events follow (null when it has none).</param>
public sealed record EventPage(IReadOnlyList<RecordedEvent> Events, long? Next, Snapshot? Snapshot = null);

/// <summary>A stream's state as of <paramref name="Version"/>, saved by a writer so that readers can start there.</summary>
public sealed record Snapshot(string Stream, long Version, JsonElement Data, DateTimeOffset RecordedAt, string? RecordedBy);

/// <summary>Body of <c>PUT /api/v1/streams/{stream}/snapshot</c>.</summary>
/// <param name="Version">The stream version the state reflects: an existing version, not below the current snapshot's.</param>
/// <param name="Data">The state (any JSON value).</param>
public sealed record SnapshotRequest(long? Version, JsonElement? Data);

/// <summary>One declarative change to an event's data. Paths are property names joined by '.'.</summary>
/// <param name="Op"><c>rename</c> (path to the sibling name <c>to</c>), <c>move</c> (path to the path <c>to</c>), <c>default</c> (set path to <c>value</c>, null when absent, where path is missing) or <c>drop</c> (remove path when present).</param>
/// <param name="Optional">rename and move: skip events without <c>path</c> instead of failing on them.</param>
public sealed record UpcastOperation(string? Op, string? Path, string? To = null, JsonElement? Value = null, bool? Optional = null);

/// <summary>Upgrades data of schema version <paramref name="FromVersion"/> to the next.</summary>
public sealed record UpcastStep(int FromVersion, IReadOnlyList<UpcastOperation>? Operations);

/// <summary>Body of <c>PUT /api/v1/event-types/{type}/upcasts</c> and of its dry run: one step per schema version from 1.</summary>
public sealed record UpcastsRequest(IReadOnlyList<UpcastStep>? Steps);

/// <summary>An event type's upcasts; its events are read at <paramref name="CurrentVersion"/>.</summary>
public sealed record EventTypeUpcasts(string Type, int CurrentVersion, IReadOnlyList<UpcastStep> Steps, DateTimeOffset UpdatedAt, string? UpdatedBy);

/// <summary>What upcasts would do to a type's stored events.</summary>
/// <param name="Checked">Events of the type looked at, oldest first.</param>
/// <param name="Upcast">Of those, events below the current version that upcast cleanly.</param>
/// <param name="Failed">Events an operation could not apply to; they would be served unchanged at their stored version.</param>
/// <param name="Complete">False when the history is longer than the dry run's limit (Fundament:Events:MaxDryRunEvents) and the rest was not checked.</param>
/// <param name="Failures">The first 100 failures.</param>
public sealed record UpcastDryRun(string Type, int CurrentVersion, long Checked, long Upcast, long Failed, bool Complete, IReadOnlyList<UpcastFailure> Failures);

/// <param name="Error">Which step and operation failed, and why.</param>
public sealed record UpcastFailure(string EventId, string Stream, long Version, long Position, int SchemaVersion, string Error);

/// <summary>A grant: <paramref name="Principal"/> (<c>user:&lt;id&gt;</c>, <c>client:&lt;id&gt;</c> or <c>role:&lt;name&gt;</c>) may use <paramref name="Capabilities"/> (read, append) on every stream starting with <paramref name="StreamPrefix"/>.</summary>
public sealed record StreamGrant(string Id, string Principal, string StreamPrefix, IReadOnlyList<string> Capabilities, DateTimeOffset CreatedAt, string? CreatedBy);

public sealed record StreamGrantRequest(string? Principal, string? StreamPrefix, IReadOnlyList<string>? Capabilities);

/// <summary>Body of <c>POST /api/v1/subscriptions</c>.</summary>
/// <param name="Name">1-100 characters of letters, digits, '.', '_', ':' and '-'.</param>
/// <param name="Filter">Which events of <c>$all</c> it receives; absent means every stream (which needs read on every stream).</param>
/// <param name="From"><c>"start"</c>, <c>"end"</c> (the default: only events appended from now on) or a position (exclusive).</param>
/// <param name="Mode"><c>catchup</c> (the default): in position order, one batch outstanding at a time, never past an event still leased or backing off; <c>competing</c>: spread over every consumer that pulls.</param>
/// <param name="MaxAttempts">Deliveries of one event before it is parked. Default 5.</param>
public sealed record SubscriptionRequest(string? Name, SubscriptionFilter? Filter, JsonElement? From, string? Mode, int? MaxAttempts);

/// <param name="StreamPrefix">Only streams starting with this.</param>
/// <param name="Type">Only events of this type.</param>
public sealed record SubscriptionFilter(string? StreamPrefix, string? Type);

/// <summary>A subscription and where it stands.</summary>
/// <param name="Checkpoint">Every matching event up to this position is acknowledged or parked; kept in the database.</param>
/// <param name="LagEvents">Positions between the checkpoint and the head of <c>$all</c> (0 when nothing matching is owed).</param>
/// <param name="LagSeconds">Age of the oldest matching event not yet acknowledged (0 when none).</param>
/// <param name="Leased">Events handed out and not yet acknowledged.</param>
/// <param name="Retrying">Events given back (nack or a lease that ran out) and waiting to be handed out again.</param>
/// <param name="Parked">Events parked after their attempts or by a consumer; list and replay them under <c>/parked</c>.</param>
public sealed record Subscription(string Name, SubscriptionFilter Filter, string Mode, int MaxAttempts, long Checkpoint, long Head, long LagEvents, double LagSeconds,
    long Leased, long Retrying, long Parked, DateTimeOffset CreatedAt, string? CreatedBy);

/// <summary>Where a subscription stands (see <see cref="Subscription"/>).</summary>
public sealed record SubscriptionProgress(long Checkpoint, long Head, long LagEvents, double LagSeconds, long Leased, long Retrying, long Parked);

/// <summary>An event handed to one consumer until <paramref name="LeaseExpiresAt"/>: acknowledge it with <paramref name="LeaseId"/>, or it is handed out again.</summary>
/// <param name="Attempt">1 on the first delivery.</param>
public sealed record LeasedEvent(RecordedEvent Event, string LeaseId, int Attempt, DateTimeOffset LeaseExpiresAt);

public sealed record PullResult(IReadOnlyList<LeasedEvent> Events);

/// <summary>Body of <c>.../ack</c>.</summary>
public sealed record AckRequest(IReadOnlyList<string>? LeaseIds);

/// <summary>Body of <c>.../nack</c>: give events back, to be retried after <paramref name="RetryAfterSeconds"/> (default: backoff by attempt), or parked at once with <paramref name="Park"/>.</summary>
/// <param name="Release">Give the events back untried, at once and without using up an attempt (a consumer stopping mid-batch, or one that must keep order after an earlier event failed); reason and park are ignored.</param>
public sealed record NackRequest(IReadOnlyList<string>? LeaseIds, string? Reason, bool? Park, int? RetryAfterSeconds, bool? Release = null);

/// <summary>What an ack or nack did.</summary>
/// <param name="Stale">Lease ids that no longer hold: the lease ran out and the event was handed out again, or the id is unknown. Those events were not changed.</param>
public sealed record LeaseResult(int Done, IReadOnlyList<string> Stale);

/// <summary>A parked event, with why and when it failed.</summary>
public sealed record ParkedEvent(RecordedEvent Event, int Attempts, string? Reason, DateTimeOffset FirstFailureAt, DateTimeOffset LastFailureAt, DateTimeOffset ParkedAt);

public sealed record ParkedPage(IReadOnlyList<ParkedEvent> Events, long? Next);

/// <summary>Body of <c>.../parked/replay</c>: the positions to replay, or every parked event when absent.</summary>
public sealed record ReplayRequest(IReadOnlyList<long>? Positions);

public sealed record ReplayResult(int Replayed);
