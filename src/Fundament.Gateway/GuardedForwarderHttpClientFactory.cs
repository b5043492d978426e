using Fundament.Core.Egress;
using Fundament.Registry.Routes;
using Yarp.ReverseProxy.Forwarder;

namespace Fundament.Gateway;

/// <summary>
/// Every upstream connection the gateway opens passes the egress policy for upstreams on the
/// address it actually connects to (<see cref="EgressConnector"/>), so a service name that
/// resolves, or re-resolves, to a metadata address or to Fundament itself fails at connect time.
/// Only the <c>fundament</c> service's clusters may reach this node's own API port; no cluster may
/// reach a gateway port (the gateway cannot be pointed at itself).
/// </summary>
internal sealed class GuardedForwarderHttpClientFactory(
    EgressConnector connector, RegistryProxyConfigProvider routes, IOptions<GatewayOptions> options, ILogger<ForwarderHttpClientFactory> logger)
    : ForwarderHttpClientFactory(logger)
{
    protected override void ConfigureHandler(ForwarderHttpClientContext context, System.Net.Http.SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        var gatewayPorts = options.Value.Ports();
        if (IsPlatformCluster(context.ClusterId))
        {
            connector.Guard(handler, EgressPurpose.Upstreams, port => !gatewayPorts.Contains(port));
        }
        else
        {
            // Any other service is refused the API endpoints of every registered Fundament node, checked on the address dialled.
            connector.Guard(handler, EgressPurpose.Upstreams, alsoDenied: routes.IsPlatformEndpoint);
        }
    }

    private static bool IsPlatformCluster(string clusterId)
    {
        const string Prefix = "svc-" + RoutePaths.FundamentService;
        return clusterId == Prefix || clusterId.StartsWith(Prefix + "@", StringComparison.Ordinal) || clusterId.StartsWith(Prefix + "~", StringComparison.Ordinal)
            || clusterId.StartsWith(Prefix + "#", StringComparison.Ordinal);
    }
}
