using System.Text.Json;
using Fundament.Modules;

namespace Fundament.Config;

internal sealed class ConfigResolver(ConfigStore store) : IConfigResolver
{
    public async Task<IReadOnlyDictionary<string, JsonElement>> ResolveAsync(string service, string environment, CancellationToken cancellationToken) =>
        (await store.ResolveAsync(service, environment, cancellationToken)).Values;
}
