using System.Diagnostics.Metrics;

namespace Fundament.Vault;

internal sealed class VaultMetrics
{
    private readonly Counter<long> _operations;
    private readonly Counter<long> _integrityFailures;

    public VaultMetrics(IMeterFactory meters)
    {
        var meter = meters.Create("Fundament.Vault");
        _operations = meter.CreateCounter<long>("fundament.vault.operations", "{operation}", "Secret operations, by operation and outcome.");
        _integrityFailures = meter.CreateCounter<long>("fundament.vault.integrity_failures", "{event}", "Stored ciphertexts that failed authentication (tampering or corruption).");
        // Present at 0 from the start, so the first failure is an increase Prometheus can see.
        _integrityFailures.Add(0);
    }

    public void Operation(string operation, string outcome) =>
        _operations.Add(1, new KeyValuePair<string, object?>("operation", operation), new KeyValuePair<string, object?>("outcome", outcome));

    public void IntegrityFailure() => _integrityFailures.Add(1);
}
