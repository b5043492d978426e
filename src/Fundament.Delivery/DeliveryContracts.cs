namespace Fundament.Delivery;

/// <summary>How a delivery travels.</summary>
public static class DeliveryKind
{
    /// <summary>POST of the JSON payload, signed with HMAC-SHA256 in <c>X-Fundament-Signature</c>.</summary>
    public const string Webhook = "webhook";

    /// <summary>POST of <c>{"text": ...}</c> to a Slack-compatible incoming webhook.</summary>
    public const string Slack = "slack";

    /// <summary>A mail through the configured SMTP server.</summary>
    public const string Email = "email";

    public static bool IsValid(string? kind) => kind is Webhook or Slack or Email;

    /// <summary>
    /// The target as answers and audit entries show it: a Slack incoming-webhook URL is itself the
    /// credential, so only its scheme and host are shown.
    /// </summary>
    public static string Display(string kind, string target) =>
        kind == Slack && Uri.TryCreate(target, UriKind.Absolute, out var url) ? $"{url.Scheme}://{url.Host}/…" : target;
}

/// <summary>Something to deliver; once enqueued it survives restarts until delivered or given up.</summary>
/// <param name="Target">URL for webhook and slack, address for email.</param>
/// <param name="Event">Event name, e.g. <c>alert.firing</c>; sent as <c>X-Fundament-Event</c>.</param>
/// <param name="Payload">JSON body for webhooks; the message text for slack and email.</param>
/// <param name="Subject">Mail subject (email only).</param>
/// <param name="Secret">Webhook signing secret; stored envelope-encrypted.</param>
/// <param name="Source">Who asked, for listing (e.g. <c>alert:&lt;id&gt;</c>).</param>
public sealed record DeliveryRequest(string Kind, string Target, string Event, string Payload, string? Subject = null, string? Secret = null, string? Source = null)
{
    /// <summary>The delivery's id when the caller names it (then enqueuing it again is a no-op); a new one otherwise.</summary>
    public string? Id { get; init; }
}

/// <summary>Puts deliveries on the durable queue. Implemented by the delivery module.</summary>
public interface IDeliveryQueue
{
    Task<string> EnqueueAsync(DeliveryRequest request, CancellationToken cancellationToken);
}

/// <summary>A delivery and its state.</summary>
public sealed record DeliveryResponse(
    string Id, string Kind, string Target, string Event, string? Source, string State, int Attempts, int MaxAttempts,
    DateTimeOffset NextAttemptAt, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset? DeliveredAt);

/// <summary>One attempt of a delivery.</summary>
public sealed record DeliveryAttempt(int Attempt, DateTimeOffset At, int? StatusCode, string? Error, long DurationMs);

public static class DeliveryState
{
    public const string Pending = "pending";
    public const string Delivered = "delivered";
    public const string Dead = "dead";
}
