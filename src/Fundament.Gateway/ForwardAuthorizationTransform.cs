using Fundament.Registry.Routes;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Fundament.Gateway;

/// <summary>
/// What the upstream receives in place of the caller's <c>Authorization</c> header, per route
/// (<c>forwardAuthorization</c>):
/// <list type="bullet">
/// <item><c>exchange</c> (default): a token minted for audience <c>service:&lt;name&gt;</c>, valid at
/// most five minutes and refused by Fundament's own API, so a token captured at an upstream is
/// worth nothing elsewhere;</item>
/// <item><c>none</c>: nothing;</item>
/// <item><c>passthrough</c>: the caller's bearer token as it came (an explicit, audited opt-in);</item>
/// </list>
/// An API key is never forwarded. The one exception is the <c>fundament</c> service, whose
/// upstream is Fundament's own API, the issuer of those credentials: its routes keep the header.
/// The decision is taken once per route when the configuration is built, not per request.
/// </summary>
internal sealed class ForwardAuthorizationTransform(IServiceTokenIssuer tokens) : ITransformProvider
{
    private const string Bearer = "Bearer ";

    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        var metadata = context.Route.Metadata;
        // A static route's audience is namespaced (static:<cluster>), so its tokens never validate at a service of that name.
        var service = metadata?.GetValueOrDefault(RegistryProxyConfigProvider.ServiceMetadata) ?? Policies.StaticRouteClaims.HolderPrefix + context.Route.ClusterId;
        if (service == RoutePaths.FundamentService)
        {
            return;
        }
        var mode = metadata?.GetValueOrDefault(RegistryProxyConfigProvider.ForwardAuthorizationMetadata) is { } text && Enum.TryParse<ForwardAuthorization>(text, out var parsed)
            ? parsed
            : ForwardAuthorization.Exchange;
        context.AddRequestTransform(transform =>
        {
            var headers = transform.ProxyRequest.Headers;
            headers.Authorization = null;
            switch (mode)
            {
                case ForwardAuthorization.Exchange:
                    var user = transform.HttpContext.User;
                    if (user.Identity?.IsAuthenticated == true)
                    {
                        headers.TryAddWithoutValidation("Authorization", Bearer + tokens.IssueFor(user, service));
                    }
                    break;
                case ForwardAuthorization.Passthrough:
                    var incoming = transform.HttpContext.Request.Headers.Authorization.ToString();
                    if (incoming.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
                    {
                        headers.TryAddWithoutValidation("Authorization", incoming);
                    }
                    break;
                case ForwardAuthorization.None:
                default:
                    break;
            }
            return ValueTask.CompletedTask;
        });
    }
}
