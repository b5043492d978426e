using System.Globalization;

namespace Fundament.Vault;

/// <summary>Audits every secret operation: who, which path and version, what came of it. Never the value.</summary>
internal sealed class VaultAuditor(IAuditLog audit, VaultMetrics metrics)
{
    public async Task RecordAsync(HttpContext context, string action, string path, int? version, string outcome, CancellationToken cancellationToken, string? reason = null)
    {
        var details = new Dictionary<string, string>(StringComparer.Ordinal);
        if (version is { } v)
        {
            details["version"] = v.ToString(CultureInfo.InvariantCulture);
        }
        if (reason is not null)
        {
            details["reason"] = reason;
        }
        metrics.Operation(action, outcome);
        await audit.AppendAsync(new AuditEvent(action, outcome) { Target = $"secret:{path}", Details = details }.From(context), cancellationToken);
    }
}
