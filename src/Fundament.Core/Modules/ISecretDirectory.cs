using System.Security.Claims;

namespace Fundament.Core.Modules;

/// <summary>What the vault can tell other modules without revealing a value (the registry hands it to a registering instance).</summary>
public interface ISecretDirectory
{
    /// <summary>Paths the caller's policies let it read.</summary>
    Task<IReadOnlyList<string>> ReadablePathsAsync(ClaimsPrincipal principal, CancellationToken cancellationToken);
}
