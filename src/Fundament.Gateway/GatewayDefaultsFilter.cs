using Yarp.ReverseProxy.Configuration;

namespace Fundament.Gateway;

/// <summary>
/// Gives static routes from <c>Fundament:Gateway:Static</c> the same safe defaults as registry
/// routes: a route that names no authorization policy requires an authenticated caller (say
/// <c>"AuthorizationPolicy": "anonymous"</c> to open it), gets the default timeout, its
/// <c>RateLimiterPolicy</c> is served by the gateway's policy catalog like a registry route's
/// <c>rateLimit</c>, and its cluster gets the circuit breaker. Its <c>Authorization</c> header is
/// exchanged for a service token unless its metadata says otherwise
/// (<c>"fundament.forwardAuthorization": "None"|"Passthrough"</c>).
/// </summary>
internal sealed class GatewayDefaultsFilter(IOptions<GatewayOptions> options) : IProxyConfigFilter
{
    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route, ClusterConfig? cluster, CancellationToken cancel)
    {
        if (string.IsNullOrEmpty(route.AuthorizationPolicy))
        {
            route = route with { AuthorizationPolicy = Fundament.Core.Security.Policies.Authenticated };
        }
        if (route.Timeout is null && string.IsNullOrEmpty(route.TimeoutPolicy))
        {
            route = route with { Timeout = options.Value.DefaultTimeout };
        }
        if (!string.IsNullOrEmpty(route.RateLimiterPolicy) && !string.Equals(route.RateLimiterPolicy, "Disable", StringComparison.OrdinalIgnoreCase))
        {
            // One limiter serves every route by name from the policy catalog (RateLimiting).
            var metadata = new Dictionary<string, string>(route.Metadata ?? new Dictionary<string, string>()) { [RateLimiting.PolicyMetadata] = route.RateLimiterPolicy };
            route = route with { RateLimiterPolicy = null, Metadata = metadata };
        }
        else if (string.IsNullOrEmpty(route.RateLimiterPolicy) && route.Metadata?.ContainsKey(RateLimiting.PolicyMetadata) != true)
        {
            // No policy: the route skips the rate limiter altogether (its partitioned limiter takes a
            // lock per request even to say "unlimited").
            route = route with { RateLimiterPolicy = "Disable" };
        }
        return ValueTask.FromResult(route);
    }

    public ValueTask<ClusterConfig> ConfigureClusterAsync(ClusterConfig cluster, CancellationToken cancel)
    {
        if (cluster.HealthCheck?.Passive is null)
        {
            cluster = cluster with
            {
                HealthCheck = (cluster.HealthCheck ?? new HealthCheckConfig()) with
                {
                    Passive = new PassiveHealthCheckConfig { Enabled = true, Policy = ConsecutiveFailuresPolicy.PolicyName, ReactivationPeriod = options.Value.ReactivationPeriod },
                },
            };
        }
        return ValueTask.FromResult(cluster);
    }
}
