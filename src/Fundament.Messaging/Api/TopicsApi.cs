using Fundament.Messaging.Transport;
using System.Text.Json;
using System.Text.RegularExpressions;
using Fundament.Messaging.Storage;

namespace Fundament.Messaging.Api;

/// <summary><c>POST /api/v1/topics/{topic}/messages</c>: publish, durable before the answer.</summary>
internal static partial class TopicsApi
{
    private const int MaxHeaders = 32;

    public static RouteGroupBuilder MapTopicsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/topics").WithTags("Messaging").RequireAuthorization(Policies.Authenticated).WithTransportProblems();
        group.MapPost("/{topic}/messages", PublishAsync).WithName("PublishMessage")
            .WithSummary("Publishes a message to every consumer group of the topic; stored durably before the 202. A re-sent id (within the dedupe window) is a duplicate, not delivered again.");
        group.MapPost("/{topic}/messages/batch", PublishBatchAsync).WithName("PublishMessages")
            .WithSummary("Publishes up to MaxBatchMessages messages in one transaction: all stored durably before the 202, or none (a bad one is a 400 naming it).");
        return group;
    }

    private static async Task<Results<Accepted<PublishResult>, ValidationProblem, ProblemHttpResult>> PublishAsync(
        string topic, PublishRequest request, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (!MessagingAccess.IsTopic(topic))
        {
            errors.Add("topic", MessagingAccess.TopicRule);
        }
        var message = Validate(request, "", errors);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (await RefusedAsync(topic, [message!], s, context, cancellationToken) is { } refused)
        {
            return refused;
        }
        var (sequence, duplicate) = await s.Transport.PublishAsync(topic, message!, context.User.ActorId(), CancellationToken.None);
        Published(topic, duplicate ? 0 : 1, s);
        return TypedResults.Accepted((string?)null, new PublishResult(message!.Id, topic, sequence, duplicate));
    }

    private static async Task<Results<Accepted<PublishBatchResult>, ValidationProblem, ProblemHttpResult>> PublishBatchAsync(
        string topic, PublishBatchRequest request, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        var errors = new ValidationErrors();
        if (!MessagingAccess.IsTopic(topic))
        {
            errors.Add("topic", MessagingAccess.TopicRule);
        }
        if (request.Messages is not { Count: > 0 } requested || requested.Count > options.MaxBatchMessages)
        {
            return Problems.Validation("messages", $"messages lists 1-{options.MaxBatchMessages} messages.");
        }
        var messages = requested.Select((m, i) => Validate(m, $"messages[{i}].", errors)).ToList();
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (await RefusedAsync(topic, messages!, s, context, cancellationToken) is { } refused)
        {
            return refused;
        }
        var actor = context.User.ActorId();
        // Stored whole or not at all.
        var results = await s.Transport.PublishBatchAsync(topic, messages.Select(m => m!).ToList(), actor, CancellationToken.None);
        Published(topic, results.Count(r => !r.Duplicate), s);
        return TypedResults.Accepted((string?)null, new PublishBatchResult(messages.Select((m, i) => new PublishResult(m!.Id, topic, results[i].Sequence, results[i].Duplicate)).ToList()));
    }

    /// <summary>The message, checked, with what is wrong added to <paramref name="errors"/> under <paramref name="prefix"/>.</summary>
    private static OutgoingMessage? Validate(PublishRequest? request, string prefix, ValidationErrors errors)
    {
        var bad = false;
        void Add(string field, string message)
        {
            bad = true;
            errors.Add(field, message);
        }
        if (request is null)
        {
            Add(prefix.TrimEnd('.'), "a message is an object with a body.");
            return null;
        }
        if (request.Id is { } id && (id.Length is 0 or > 200 || !Printable().IsMatch(id)))
        {
            Add(prefix + "id", "id is 1-200 printable ASCII characters.");
        }
        if (request.Key is { } key && (key.Length is 0 or > 200 || MessagingAccess.HasControlCharacters(key)))
        {
            Add(prefix + "key", "key is 1-200 characters, no control characters.");
        }
        if (request.Body is not { ValueKind: not JsonValueKind.Undefined } body)
        {
            Add(prefix + "body", "body is required: any JSON value.");
            body = default;
        }
        if (request.Headers is { } headers && (headers.Count > MaxHeaders || headers.Any(h => h.Key.Length is 0 or > 100 || !HeaderName().IsMatch(h.Key) || h.Value is null || h.Value.Length > 1000)))
        {
            Add(prefix + "headers", $"headers holds up to {MaxHeaders} string values (names 1-100 letters, digits, '-', '_', '.' and ':'; values up to 1000 characters).");
        }
        return bad ? null : new OutgoingMessage(request.Id ?? Guid.CreateVersion7().ToString(), request.Key, body.GetRawText(),
            request.Headers is { Count: > 0 } h ? JsonSerializer.Serialize(h) : null, IdGiven: request.Id is not null);
    }

    /// <summary>The answer when a message is too large, the caller may not publish on the topic (audited), or a group of the topic is full; else null.</summary>
    private static async Task<ProblemHttpResult?> RefusedAsync(string topic, IReadOnlyList<OutgoingMessage> messages, MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        if (messages.Any(m => m.Bytes > options.MaxMessageBytes))
        {
            return Problems.LimitExceeded("maxMessageBytes", options.MaxMessageBytes, $"A message's body and headers may take at most {options.MaxMessageBytes} bytes.");
        }
        if (topic.StartsWith(BusEventSink.ReservedPrefix, StringComparison.Ordinal))
        {
            // The platform's own events: a tenant (or an administrator) publishing there would forge them.
            await s.Audit.AppendAsync(new AuditEvent("messaging.publish", AuditOutcome.Denied) { Target = $"topic:{topic}" }.From(context), cancellationToken);
            return Problems.Forbidden($"Topics starting with '{BusEventSink.ReservedPrefix}' carry the platform's own events; nothing else publishes to them.");
        }
        if (await MessagingAccess.DeniedAsync(topic, TopicGrantStore.Publish, "messaging.publish", s, context, cancellationToken) is { } denied)
        {
            return denied;
        }
        if (s.Metrics.IsFull(topic))
        {
            context.Response.Headers.RetryAfter = ((int)Math.Ceiling(options.MeasureInterval.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Problems.LimitExceeded("maxMessagesPerGroup", options.MaxMessagesPerGroup,
                $"A consumer group of topic '{topic}' holds {options.MaxMessagesPerGroup} messages or more; publishing resumes once it drains.", StatusCodes.Status429TooManyRequests);
        }
        return null;
    }

    private static void Published(string topic, int count, MessagingAccess.Services s)
    {
        if (count > 0)
        {
            s.Signal.Notify();
            s.Metrics.Published(topic, count);
        }
    }

    [GeneratedRegex("^[\\x21-\\x7E]+$")]
    private static partial Regex Printable();

    [GeneratedRegex("^[A-Za-z0-9._:-]+$")]
    private static partial Regex HeaderName();
}
