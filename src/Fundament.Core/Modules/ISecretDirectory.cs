using System.Security.Claims;

namespace Fundament.Modules;

/// <summary>What the vault can tell other modules without revealing a value.</summary>
public interface ISecretDirectory
{
    /// <summary>Paths the caller's policies let it read.</summary>
    Task<IReadOnlyList<string>> ReadablePathsAsync(ClaimsPrincipal principal, CancellationToken cancellationToken);

    /// <summary>Secrets overdue for rotation, with when they fell due.</summary>
    Task<IReadOnlyList<(string Path, DateTimeOffset DueAt)>> OverdueAsync(CancellationToken cancellationToken);

    /// <summary>Secrets whose stored ciphertext failed authentication since <paramref name="since"/>, with the latest time.</summary>
    Task<IReadOnlyList<(string Path, DateTimeOffset At)>> IntegrityFailuresSinceAsync(DateTimeOffset since, CancellationToken cancellationToken);
}
