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
        var group = endpoints.MapGroup("/api/v1/topics").WithTags("Messaging").RequireAuthorization(Policies.Authenticated);
        group.MapPost("/{topic}/messages", PublishAsync).WithName("PublishMessage")
            .WithSummary("Publishes a message to every consumer group of the topic; stored durably before the 202. A re-sent id (within the dedupe window) is a duplicate, not delivered again.");
        return group;
    }

    private static async Task<Results<Accepted<PublishResult>, ValidationProblem, ProblemHttpResult>> PublishAsync(
        string topic, PublishRequest request, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        var errors = new ValidationErrors();
        if (!MessagingAccess.IsTopic(topic))
        {
            errors.Add("topic", MessagingAccess.TopicRule);
        }
        if (request.Id is { } id && (id.Length is 0 or > 200 || !Printable().IsMatch(id)))
        {
            errors.Add("id", "id is 1-200 printable ASCII characters.");
        }
        if (request.Key is { } key && (key.Length is 0 or > 200 || MessagingAccess.HasControlCharacters(key)))
        {
            errors.Add("key", "key is 1-200 characters, no control characters.");
        }
        if (request.Body is not { ValueKind: not JsonValueKind.Undefined } body)
        {
            errors.Add("body", "body is required: any JSON value.");
            body = default;
        }
        if (request.Headers is { } headers && (headers.Count > MaxHeaders || headers.Any(h => h.Key.Length is 0 or > 100 || !HeaderName().IsMatch(h.Key) || h.Value is null || h.Value.Length > 1000)))
        {
            errors.Add("headers", $"headers holds up to {MaxHeaders} string values (names 1-100 letters, digits, '-', '_', '.' and ':'; values up to 1000 characters).");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var message = new OutgoingMessage(request.Id ?? Guid.CreateVersion7().ToString(), request.Key, body.GetRawText(),
            request.Headers is { Count: > 0 } h ? JsonSerializer.Serialize(h) : null);
        if (message.Bytes > options.MaxMessageBytes)
        {
            return Problems.LimitExceeded("maxMessageBytes", options.MaxMessageBytes, $"A message's body and headers may take at most {options.MaxMessageBytes} bytes.");
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
        var (sequence, duplicate) = await s.Store.PublishAsync(topic, message, context.User.ActorId(), cancellationToken);
        if (!duplicate)
        {
            s.Signal.Notify();
            s.Metrics.Published(topic);
        }
        return TypedResults.Accepted((string?)null, new PublishResult(message.Id, topic, sequence, duplicate));
    }

    [GeneratedRegex("^[\\x21-\\x7E]+$")]
    private static partial Regex Printable();

    [GeneratedRegex("^[A-Za-z0-9._:-]+$")]
    private static partial Regex HeaderName();
}
