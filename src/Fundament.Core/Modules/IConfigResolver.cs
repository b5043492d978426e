using System.Security.Claims;
using System.Text.Json;

namespace Fundament.Core.Modules;

/// <summary>The config module's resolved view, for other modules (the registry hands it to a registering instance).</summary>
public interface IConfigResolver
{
    /// <summary>
    /// The resolved configuration of <paramref name="service"/> in <paramref name="environment"/>, or
    /// null when <paramref name="caller"/> may not read it (the same rule as <c>GET /api/v1/config/resolved</c>).
    /// </summary>
    Task<IReadOnlyDictionary<string, JsonElement>?> ResolveForAsync(ClaimsPrincipal caller, string service, string environment, CancellationToken cancellationToken);
}
