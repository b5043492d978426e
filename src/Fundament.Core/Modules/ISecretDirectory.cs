using System.Security.Claims;

namespace Fundament.Core.Modules;

/// <summary>What the vault can tell other modules without revealing a value (the registry hands it to a registering instance).</summary>
public interface ISecretDirectory
{
    /// <summary>Paths the caller's policies let it read.</summary>
    Task<IReadOnlyList<string>> ReadablePathsAsync(ClaimsPrincipal principal, CancellationToken cancellationToken);
}

/// <summary>
/// The platform reading a secret for its own use: an API key an operator configured by vault path
/// (the analysis module's model endpoints). Never reachable with a path a tenant chose.
/// </summary>
public interface IPlatformSecrets
{
    /// <summary>The current version's value (a JSON string as its text, any other JSON value as JSON), or null when there is no readable current version.</summary>
    Task<string?> ReadAsync(string path, CancellationToken cancellationToken);
}
