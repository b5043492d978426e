namespace Fundament.Audit;

/// <summary>Section <c>Fundament:Audit</c>.</summary>
public sealed class AuditOptions
{
    public const string SectionName = "Fundament:Audit";

    /// <summary>
    /// How often one control node verifies the whole chain on its own (as <c>GET /api/v1/audit/verify</c>
    /// does) and reports the result as <c>fundament_audit_chain_valid</c>, so an edit, deletion or
    /// truncation raises an alert without anyone asking. The walk reads every entry: on a very large
    /// log, make it rarer. Default 1 hour; <c>00:00:00</c> turns it off.
    /// </summary>
    public TimeSpan VerifyInterval { get; set; } = TimeSpan.FromHours(1);
}

internal sealed class AuditOptionsValidator : SettingsValidator<AuditOptions>
{
    protected override string Section => AuditOptions.SectionName;

    protected override void Check(AuditOptions o, SettingsProblems problems) =>
        problems.Require(o.VerifyInterval == TimeSpan.Zero || (o.VerifyInterval >= TimeSpan.FromMinutes(1) && o.VerifyInterval <= TimeSpan.FromDays(7)),
            o.VerifyInterval, "must be 00:00:00 (off) or between 00:01:00 and 7.00:00:00.");
}
