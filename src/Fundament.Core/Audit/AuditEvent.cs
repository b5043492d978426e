namespace Fundament.Core.Audit;

/// <summary>
/// One security-relevant action for the audit log. Never put a secret, password or token in any
/// field: the log is read by people who must not learn them.
/// </summary>
/// <param name="Action">Dotted verb, e.g. <c>auth.login</c>, <c>user.create</c>.</param>
/// <param name="Outcome"><see cref="AuditOutcome"/>: success, failure or denied.</param>
public sealed record AuditEvent(string Action, string Outcome)
{
    /// <summary>Who acted: <c>user:&lt;id&gt;</c>, <c>client:&lt;id&gt;</c>, <c>system</c> or <c>anonymous</c>.</summary>
    public string Actor { get; init; } = "anonymous";

    /// <summary>Human-readable name of the actor (username or client name), when known.</summary>
    public string? ActorName { get; init; }

    /// <summary>What was acted on, e.g. <c>user:&lt;id&gt;</c>.</summary>
    public string? Target { get; init; }

    public string? SourceIp { get; init; }

    /// <summary>Extra non-secret facts (reason, changed fields, ...).</summary>
    public IReadOnlyDictionary<string, string>? Details { get; init; }
}

public static class AuditOutcome
{
    public const string Success = "success";
    public const string Failure = "failure";
    public const string Denied = "denied";
}
