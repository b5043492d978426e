using System.Text.Json;

namespace Fundament.Modules;

/// <summary>The config module's resolved view, for other modules (the registry hands it to a registering instance).</summary>
public interface IConfigResolver
{
    Task<IReadOnlyDictionary<string, JsonElement>> ResolveAsync(string service, string environment, CancellationToken cancellationToken);
}
