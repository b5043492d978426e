namespace Fundament.Alerts;
public static class AlertState
{
    /// <summary>The condition holds but not yet for the rule's <c>for</c>.</summary>
    public const string Pending = "pending";

    public const string Firing = "firing";
    public const string Resolved = "resolved";
}

/// <summary>An alert rule.</summary>
/// <param name="For">How long the condition must hold before the alert fires, e.g. <c>30s</c>.</param>
/// <param name="Service">Optional: only this service (service and instance rules).</param>
public sealed record AlertRuleResponse(string Id, string Kind, string Name, bool Enabled, string For, string Severity, string? Service, bool Builtin, DateTimeOffset UpdatedAt);

/// <summary>Body of <c>POST /api/v1/alerts/rules</c>; on <c>PUT</c> every field is optional and kind is fixed.</summary>
public sealed record AlertRuleRequest(string? Kind, string? Name, bool? Enabled, string? For, string? Severity, string? Service);

/// <summary>A notification channel (never its secret).</summary>
public sealed record AlertChannelResponse(string Id, string Name, string Kind, string Target, bool Enabled, bool Signed, DateTimeOffset CreatedAt);

/// <summary>Body of <c>POST /api/v1/alerts/channels</c>.</summary>
/// <param name="Kind"><c>webhook</c> (HMAC-signed), <c>slack</c> or <c>email</c>.</param>
/// <param name="Target">URL for webhook and slack, address for email.</param>
/// <param name="Secret">Webhook signing secret; generated (and returned once) when left out.</param>
public sealed record AlertChannelRequest(string? Name, string? Kind, string? Target, string? Secret);

/// <summary>Answer of creating a channel: the only time the webhook secret is shown.</summary>
public sealed record CreatedChannelResponse(AlertChannelResponse Channel, string? Secret);

/// <summary>An alert.</summary>
public sealed record AlertResponse(string Id, string RuleId, string Subject, string State, string Severity, string Summary, DateTimeOffset StartedAt, DateTimeOffset? FiredAt, DateTimeOffset? ResolvedAt);
