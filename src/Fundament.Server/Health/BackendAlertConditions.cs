using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Fundament.Server.Health;

/// <summary>What alert rules can watch in the host itself: a backend (database, Redis) failing its readiness check.</summary>
internal sealed class BackendAlertConditions(HealthCheckService health) : IAlertConditionSource
{
    public const string BackendDown = "backend_down";

    public IReadOnlyList<AlertConditionKind> Kinds { get; } =
    [
        new(BackendDown, "A backend of Fundament itself fails its readiness check.",
            new BuiltInAlertRule("backend-down", "A backend of Fundament is down", TimeSpan.FromSeconds(30), "critical")),
    ];

    public async Task<IReadOnlyList<AlertCondition>> EvaluateAsync(string kind, string? service, CancellationToken cancellationToken)
    {
        if (kind != BackendDown)
        {
            return [];
        }
        var report = await health.CheckHealthAsync(r => r.Tags.Contains(HealthEndpoints.ReadyTag), cancellationToken);
        // Degraded counts: a backend the process can work around (Redis for rate limits) is still down.
        return report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy)
            .Select(e => new AlertCondition($"backend:{e.Key}", $"Backend {e.Key} is down: {e.Value.Description}"))
            .ToList();
    }
}
