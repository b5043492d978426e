using System.Security.Claims;
using System.Text.Json;

namespace Fundament.Config;

internal sealed class ConfigResolver(ConfigStore store, IRolePermissions permissions) : IConfigResolver
{
    public async Task<IReadOnlyDictionary<string, JsonElement>?> ResolveForAsync(ClaimsPrincipal caller, string service, string environment, CancellationToken cancellationToken) =>
        await ConfigApi.MayReadAsync(caller, service, permissions, cancellationToken)
            ? (await store.ResolveCachedAsync(service, environment, cancellationToken)).Values
            : null;
}
