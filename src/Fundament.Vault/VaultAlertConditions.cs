using Fundament.Vault.Secrets;

namespace Fundament.Vault;

/// <summary>What alert rules can watch in the vault: overdue rotations and tampered ciphertexts.</summary>
internal sealed class VaultAlertConditions(SecretStore store, TimeProvider time) : IAlertConditionSource
{
    public const string RotationOverdue = "secret_rotation_overdue";
    public const string Integrity = "secret_integrity";

    /// <summary>How long an integrity failure keeps its condition holding, so it fires once and then resolves.</summary>
    private static readonly TimeSpan IntegrityWindow = TimeSpan.FromHours(1);

    public IReadOnlyList<AlertConditionKind> Kinds { get; } =
    [
        new(RotationOverdue, "A secret is overdue for rotation.",
            new BuiltInAlertRule("secret-rotation-overdue", "A secret is overdue for rotation", TimeSpan.Zero, "warning")),
        new(Integrity, "A stored secret failed its integrity check within the last hour (tampering or corruption).",
            new BuiltInAlertRule("secret-integrity", "A stored secret failed its integrity check", TimeSpan.Zero, "critical")),
    ];

    public async Task<IReadOnlyList<AlertCondition>> EvaluateAsync(string kind, string? service, CancellationToken cancellationToken) => kind switch
    {
        RotationOverdue => (await store.RotationDueAsync(cancellationToken))
            .Select(d => new AlertCondition($"secret:{d.Path}", $"Secret {d.Path} was due for rotation at {d.DueAt:u}.", d.DueAt)).ToList(),
        Integrity => (await store.IntegrityFailuresSinceAsync(time.GetUtcNow() - IntegrityWindow, cancellationToken))
            .Select(f => new AlertCondition($"secret:{f.Path}",
                $"Secret {f.Path} failed its integrity check at {f.At:u}: its stored ciphertext was altered, moved or corrupted.", f.At)).ToList(),
        _ => [],
    };
}
