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
