using System.Diagnostics.Metrics;
using Fundament.Registry.Instances;

namespace Fundament.Registry;

/// <summary>
/// <c>fundament_registry_instances{service,status}</c> from the monitor's last pass, check
/// durations by outcome, and deregistrations.
/// </summary>
internal sealed class RegistryMetrics
{
    private readonly Histogram<double> _checkDuration;
    private readonly Counter<long> _reaped;
    private volatile IReadOnlyList<ServiceSummary> _snapshot = [];

    public RegistryMetrics(IMeterFactory meters)
    {
        var meter = meters.Create("Fundament.Registry");
        meter.CreateObservableGauge("fundament.registry.instances", Observe, "{instance}", "Registered instances by service and status.");
        _checkDuration = meter.CreateHistogram<double>("fundament.registry.check.duration", "s", "Duration of active HTTP checks.");
        _reaped = meter.CreateCounter<long>("fundament.registry.deregistrations", "{instance}", "Instances removed after being critical longer than deregisterAfter.");
    }

    public void Update(IReadOnlyList<ServiceSummary> services) => _snapshot = services;

    public void Check(TimeSpan duration, string status) =>
        _checkDuration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("status", status));

    public void Reaped(int count) => _reaped.Add(count);

    private IEnumerable<Measurement<long>> Observe()
    {
        foreach (var service in _snapshot)
        {
            yield return new(service.Passing, new("service", service.Service), new("status", InstanceStatus.Passing));
            yield return new(service.Warning, new("service", service.Service), new("status", InstanceStatus.Warning));
            yield return new(service.Critical, new("service", service.Service), new("status", InstanceStatus.Critical));
        }
    }
}
