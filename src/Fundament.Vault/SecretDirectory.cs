using System.Security.Claims;
using Fundament.Vault.Policies;
using Fundament.Vault.Secrets;

namespace Fundament.Vault;

internal sealed class SecretDirectory(SecretStore store, SecretPolicyStore policies) : ISecretDirectory
{
    public async Task<IReadOnlyList<string>> ReadablePathsAsync(ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        var access = await policies.AccessForAsync(principal, cancellationToken);
        return (await store.ListAsync("", cancellationToken)).Where(p => access.Allows("read", p)).ToList();
    }
}

/// <summary>The platform's own reads of secrets an operator named in its settings.</summary>
internal sealed class PlatformSecrets(SecretStore store) : IPlatformSecrets
{
    public async Task<string?> ReadAsync(string path, CancellationToken cancellationToken)
    {
        var result = await store.ReadAsync(path, null, cancellationToken);
        if (result is not { Status: ReadStatus.Ok, Value: { } value })
        {
            return null;
        }
        try
        {
            // Values are stored as the JSON the API was given: a string is the key itself, anything else its JSON text.
            using var document = System.Text.Json.JsonDocument.Parse(value);
            return document.RootElement.ValueKind == System.Text.Json.JsonValueKind.String ? document.RootElement.GetString() : document.RootElement.GetRawText();
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(value);
        }
    }
}
