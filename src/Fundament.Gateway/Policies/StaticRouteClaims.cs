using Fundament.Registry.Routes;

namespace Fundament.Gateway.Policies;

/// <summary>
/// The gateway's static routes (<c>Fundament:Gateway:Static:Routes</c>) hold their paths as claims
/// of <c>static:&lt;route id&gt;</c>, so no service can claim or route into them. Read from
/// configuration, which must therefore be the same on control and gateway nodes.
/// </summary>
internal sealed class StaticRouteClaims(IConfiguration configuration) : IRouteClaimSource
{
    public const string HolderPrefix = "static:";

    public IEnumerable<RouteClaim> Claims()
    {
        foreach (var route in configuration.GetSection(GatewayOptions.SectionName + ":Static:Routes").GetChildren())
        {
            if (route["Match:Path"] is { Length: > 0 } path)
            {
                yield return new RouteClaim(HolderPrefix + route.Key, RoutePaths.Format(RoutePaths.LiteralPrefix(path)), "configuration", DateTimeOffset.UnixEpoch);
            }
        }
    }
}
