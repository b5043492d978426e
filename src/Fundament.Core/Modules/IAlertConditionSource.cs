namespace Fundament.Core.Modules;

/// <summary>
/// Conditions alert rules can watch, contributed by the module that knows the state (the registry
/// knows instances, the vault knows secrets). The alerts module evaluates rules through these and
/// knows no other module.
/// </summary>
public interface IAlertConditionSource
{
    IReadOnlyList<AlertConditionKind> Kinds { get; }

    /// <summary>Everything for which <paramref name="kind"/> holds now, narrowed to <paramref name="service"/> when the rule names one.</summary>
    Task<IReadOnlyList<AlertCondition>> EvaluateAsync(string kind, string? service, CancellationToken cancellationToken);
}

/// <param name="Kind">e.g. <c>instance_critical</c>; a rule's <c>kind</c>.</param>
/// <param name="Description">When it holds.</param>
/// <param name="BuiltIn">The rule every installation starts with, if any.</param>
public sealed record AlertConditionKind(string Kind, string Description, BuiltInAlertRule? BuiltIn = null);

/// <summary>A rule created once at first start; operators may adjust or disable it, not delete it.</summary>
public sealed record BuiltInAlertRule(string Id, string Name, TimeSpan For, string Severity);

/// <summary>One subject for which a condition holds.</summary>
/// <param name="Subject">Stable across evaluations (<c>instance:abc</c>): one alert per rule and subject.</param>
/// <param name="Since">When it began to hold, when known; the rule's <c>for</c> counts from there.</param>
public sealed record AlertCondition(string Subject, string Summary, DateTimeOffset? Since = null);
