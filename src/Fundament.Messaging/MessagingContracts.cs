using System.Text.Json;

namespace Fundament.Messaging;

/// <summary>Body of <c>POST /api/v1/topics/{topic}/messages</c>.</summary>
/// <param name="Id">The message id, unique per topic: a message re-sent with an id seen within <c>Fundament:Messaging:DedupeWindow</c> is a duplicate and is not delivered again. Default: a new id.</param>
/// <param name="Key">Orders messages in ordered groups: one key's messages are delivered one at a time, in publish order. Up to 200 characters.</param>
/// <param name="Body">Any JSON value.</param>
/// <param name="Headers">Up to 32 string headers (names up to 100 characters, values up to 1000).</param>
public sealed record PublishRequest(string? Id, string? Key, JsonElement? Body, IReadOnlyDictionary<string, string>? Headers);

/// <summary>Body of <c>POST /api/v1/topics/{topic}/messages/batch</c>: up to <c>MaxBatchMessages</c> messages, stored together or not at all.</summary>
public sealed record PublishBatchRequest(IReadOnlyList<PublishRequest>? Messages);

/// <summary>A batch accepted: every message durable before the answer, results in request order.</summary>
public sealed record PublishBatchResult(IReadOnlyList<PublishResult> Messages);

/// <summary>A publish accepted: durable before the answer.</summary>
/// <param name="Sequence">Where the message stands in its topic (ascending in publish order).</param>
/// <param name="Duplicate">True when the id was published before (within the dedupe window): nothing new was stored.</param>
public sealed record PublishResult(string Id, string Topic, long Sequence, bool Duplicate);

/// <summary>Retry delays after a nack: <c>initialSeconds</c>, doubled per attempt up to <c>maxSeconds</c>.</summary>
public sealed record Backoff(double InitialSeconds, double MaxSeconds);

/// <summary>Body of <c>POST /api/v1/topics/{topic}/subscriptions</c>.</summary>
/// <param name="Group">1-100 characters of letters, digits, '.', '_', ':' and '-'.</param>
/// <param name="MaxAttempts">Deliveries of one message before it is dead-lettered. Default 5, 1-100.</param>
/// <param name="Backoff">Retry delays. Default 1 s doubling to 5 minutes.</param>
/// <param name="Ordered">Messages with the same key one at a time, in order; a failing message holds back only its key, and a key's dead letters keep its order. Default false.</param>
/// <param name="DeadLetter">Whether a message out of attempts becomes a dead letter (true, the default) or is dropped (counted and logged).</param>
/// <param name="Push">Makes it a push group: Fundament POSTs every message to a URL instead of waiting for pulls.</param>
public sealed record ConsumerGroupRequest(string? Group, int? MaxAttempts, Backoff? Backoff, bool? Ordered, bool? DeadLetter, PushRequest? Push = null);

/// <summary>
/// Where a push group delivers: each message is POSTed to <paramref name="Url"/> as a <see cref="PushedMessage"/>,
/// signed the Standard Webhooks way (<c>webhook-id</c> is the message id, the same on every retry).
/// A 2xx answer acknowledges it; anything else, or no answer within the push timeout, is a failed attempt,
/// retried with the group's backoff (or the answer's <c>Retry-After</c>) and dead-lettered after its
/// attempts; 410 Gone dead-letters it at once.
/// </summary>
/// <param name="Url">An absolute http or https URL without credentials, allowed by the webhook egress policy.</param>
/// <param name="Secret">The signing secret, <c>whsec_&lt;base64&gt;</c>; generated when left out (shown once).</param>
public sealed record PushRequest(string? Url, string? Secret = null);

/// <summary>A push group's target (its secret is shown only when the group is created).</summary>
public sealed record PushTarget(string Url);

/// <summary>The body of a push: the message as a pull would hand it out, without a lease.</summary>
public sealed record PushedMessage(string Id, string Topic, string Group, long Sequence, string? Key, JsonElement Body, IReadOnlyDictionary<string, string>? Headers,
    DateTimeOffset PublishedAt, int Attempt);

/// <summary>A consumer group and where it stands.</summary>
/// <param name="Ready">Messages waiting to be delivered (retries included).</param>
/// <param name="Leased">Messages handed out and not yet acknowledged.</param>
/// <param name="DeadLetters">Dead letters not replayed or purged.</param>
/// <param name="OldestSeconds">Age of the oldest message the group has not acknowledged (dead letters aside).</param>
/// <param name="Push">Where a push group delivers; null for a pull group.</param>
/// <param name="PushSecret">A new push group's signing secret: in the answer that created it, and never again.</param>
public sealed record ConsumerGroup(string Topic, string Group, int MaxAttempts, Backoff Backoff, bool Ordered, bool DeadLetter,
    long Ready, long Leased, long DeadLetters, double OldestSeconds, DateTimeOffset CreatedAt, string? CreatedBy, PushTarget? Push = null, string? PushSecret = null);

/// <summary>A message handed out under a lease.</summary>
/// <param name="Sequence">The message's place in its topic.</param>
/// <param name="Attempt">1 on the first delivery.</param>
/// <param name="LeaseId">Acknowledge or nack with it before <paramref name="LeasedUntil"/>; after that the message is handed out again.</param>
public sealed record LeasedMessage(string Id, string Topic, long Sequence, string? Key, JsonElement Body, IReadOnlyDictionary<string, string>? Headers,
    DateTimeOffset PublishedAt, int Attempt, string LeaseId, DateTimeOffset LeasedUntil);

public sealed record PullResult(IReadOnlyList<LeasedMessage> Messages);

/// <summary>Body of <c>.../ack</c>: one lease id, or several.</summary>
public sealed record AckRequest(string? LeaseId, IReadOnlyList<string>? LeaseIds);

/// <summary>Body of <c>.../nack</c>.</summary>
/// <param name="Reason">Why it failed (kept with a dead letter); up to 2000 characters.</param>
/// <param name="ExceptionType">The handler's exception type, kept with a dead letter; up to 200 characters.</param>
/// <param name="DeadLetter">Dead-letter at once, whatever attempts are left (a message no retry will fix).</param>
/// <param name="RetryAfterSeconds">Seconds before the retry, instead of the group's backoff.</param>
/// <param name="Release">Give the messages back untried, at once and without using up an attempt (a consumer stopping mid-batch); the rest is ignored.</param>
public sealed record NackRequest(string? LeaseId, IReadOnlyList<string>? LeaseIds, string? Reason, string? ExceptionType, bool? DeadLetter, double? RetryAfterSeconds, bool? Release = null);

/// <param name="Done">Lease ids that held and were settled.</param>
/// <param name="Stale">Lease ids that no longer hold (ran out and handed out again, or unknown): the message was not settled by this call.</param>
public sealed record SettleResult(int Done, IReadOnlyList<string> Stale);

/// <summary>A message a group gave up on.</summary>
/// <param name="Sequence">Identifies the dead letter within its topic and group.</param>
/// <param name="Reason">The last failure: the nack's reason, or that the lease ran out on the last attempt.</param>
/// <param name="Blocking">In an ordered group: later messages of the same key held back behind this one.</param>
public sealed record DeadLetter(string Topic, string Group, long Sequence, string MessageId, string? Key, JsonElement Body, IReadOnlyDictionary<string, string>? Headers,
    string? Reason, string? ExceptionType, int Attempts, DateTimeOffset PublishedAt, DateTimeOffset FirstFailureAt, DateTimeOffset LastFailureAt, DateTimeOffset DeadLetteredAt, long Blocking);

/// <param name="Next">The <c>after</c> of the next page, when there may be one.</param>
public sealed record DeadLetterPage(IReadOnlyList<DeadLetter> DeadLetters, long? Next);

/// <summary>Which dead letters of a group a replay or purge takes: the listed sequences, one key's, or (<c>all: true</c>) every one.</summary>
public sealed record DeadLetterSelection(string? Topic, string? Group, IReadOnlyList<long>? Sequences, string? Key, bool? All);

public sealed record DeadLetterResult(int Count);

/// <summary>Who may publish and/or consume on every topic starting with a prefix.</summary>
public sealed record TopicGrant(string Id, string Principal, string TopicPrefix, IReadOnlyList<string> Capabilities, DateTimeOffset CreatedAt, string? CreatedBy);

public sealed record TopicGrantRequest(string? Principal, string? TopicPrefix, IReadOnlyList<string>? Capabilities);
