using Fundament.Registry.Instances;

namespace Fundament.Registry;

/// <summary>What alert rules can watch in the registry: services without a passing instance, critical instances.</summary>
internal sealed class RegistryAlertConditions(RegistryStore store) : IAlertConditionSource
{
    public const string ServiceNoPassing = "service_no_passing";
    public const string InstanceCritical = "instance_critical";

    public IReadOnlyList<AlertConditionKind> Kinds { get; } =
    [
        new(ServiceNoPassing, "A registered service has no passing instance.",
            new BuiltInAlertRule("service-no-passing", "A service has no passing instance", TimeSpan.FromSeconds(30), "critical")),
        new(InstanceCritical, "An instance has been critical (longer than the rule's for).",
            new BuiltInAlertRule("instance-critical", "An instance has been critical for 5 minutes", TimeSpan.FromMinutes(5), "warning")),
    ];

    public async Task<IReadOnlyList<AlertCondition>> EvaluateAsync(string kind, string? service, CancellationToken cancellationToken) => kind switch
    {
        ServiceNoPassing => (await store.ServicesAsync(cancellationToken))
            .Where(s => s.Total > 0 && s.Passing == 0 && (service is null || service == s.Service))
            .Select(s => new AlertCondition($"service:{s.Service}", $"Service {s.Service} has no passing instance ({s.Critical} critical, {s.Warning} warning)."))
            .ToList(),
        InstanceCritical => (await store.AllAsync(cancellationToken))
            .Where(i => i.Status == InstanceStatus.Critical && i.CriticalSince is not null && (service is null || service == i.Service))
            .Select(i => new AlertCondition($"instance:{i.Id}", $"Instance {i.Id} of {i.Service} is critical: {i.Output}",
                DateTimeOffset.FromUnixTimeMilliseconds(i.CriticalSince!.Value)))
            .ToList(),
        _ => [],
    };
}
