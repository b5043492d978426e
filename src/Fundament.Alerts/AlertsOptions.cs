namespace Fundament.Alerts;

/// <summary>Section <c>Fundament:Alerts</c>.</summary>
public sealed class AlertsOptions
{
    public const string SectionName = "Fundament:Alerts";

    /// <summary>Whether this process evaluates rules (control role). Default true; one replica at a time holds the evaluator lease.</summary>
    public bool EvaluatorEnabled { get; set; } = true;

    /// <summary>How often rules are evaluated. Default 5s.</summary>
    public TimeSpan EvaluationInterval { get; set; } = TimeSpan.FromSeconds(5);
}

internal sealed class AlertsOptionsValidator : SettingsValidator<AlertsOptions>
{
    protected override string Section => AlertsOptions.SectionName;

    protected override void Check(AlertsOptions o, SettingsProblems problems) =>
        problems.Between(o.EvaluationInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(5));
}
