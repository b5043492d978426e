namespace Fundament.Alerts;

/// <summary>What a rule watches.</summary>
public static class RuleKind
{
    /// <summary>A registered service has no passing instance.</summary>
    public const string ServiceNoPassing = "service_no_passing";

    /// <summary>An instance has been critical (longer than the rule's <c>for</c>).</summary>
    public const string InstanceCritical = "instance_critical";

    /// <summary>A backend of Fundament itself fails its readiness check.</summary>
    public const string BackendDown = "backend_down";

    /// <summary>A secret is overdue for rotation.</summary>
    public const string SecretRotationOverdue = "secret_rotation_overdue";

    /// <summary>A stored secret failed its integrity check within the last hour (tampering or corruption).</summary>
    public const string SecretIntegrity = "secret_integrity";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { ServiceNoPassing, InstanceCritical, BackendDown, SecretRotationOverdue, SecretIntegrity };
}

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
