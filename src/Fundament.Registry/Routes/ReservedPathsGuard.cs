namespace Fundament.Registry.Routes;

/// <summary>
/// Every path the platform serves must lie under one of <see cref="RoutePaths.Reserved"/>, which
/// only the <c>fundament</c> service may route. Checked once at start-up, so a module that adds a
/// path outside them fails to start instead of leaving that path claimable by a tenant.
/// </summary>
public static class ReservedPathsGuard
{
    public static void EnsurePlatformPathsAreReserved(this IEndpointRouteBuilder endpoints)
    {
        var outside = endpoints.DataSources
            .SelectMany(source => source.Endpoints)
            .OfType<RouteEndpoint>()
            .Select(e => e.RoutePattern.RawText ?? "")
            .Where(path => RoutePaths.Normalize(path) is { Length: > 0 } segments && !RoutePaths.Reserved.Any(r => RoutePaths.Covers(RoutePaths.Normalize(r), segments)))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (outside.Count > 0)
        {
            throw new StartupException($"These platform paths lie outside Fundament's reserved paths ({string.Join(", ", RoutePaths.Reserved)}), so a service could claim them at the gateway: {string.Join("; ", outside)}. Add their prefix to RoutePaths.Reserved.");
        }
    }
}
