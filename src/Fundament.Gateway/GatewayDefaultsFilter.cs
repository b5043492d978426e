using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;

namespace Fundament.Gateway;

/// <summary>
/// Gives static routes from <c>Fundament:Gateway:Static</c> the same safe defaults as registry
/// routes: a route that names no authorization policy requires an authenticated caller (say
/// <c>"AuthorizationPolicy": "anonymous"</c> to open it), gets the default timeout, and its
/// cluster gets the circuit breaker.
/// </summary>
internal sealed class GatewayDefaultsFilter(IOptions<GatewayOptions> options) : IProxyConfigFilter
{
    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route, ClusterConfig? cluster, CancellationToken cancel)
    {
        if (string.IsNullOrEmpty(route.AuthorizationPolicy))
        {
            route = route with { AuthorizationPolicy = Fundament.Security.Policies.Authenticated };
        }
        if (route.Timeout is null && string.IsNullOrEmpty(route.TimeoutPolicy))
        {
            route = route with { Timeout = options.Value.DefaultTimeout };
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
