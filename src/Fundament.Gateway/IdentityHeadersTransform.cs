using System.Diagnostics;
using System.Text.RegularExpressions;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Fundament.Gateway;

/// <summary>
/// On every route: drops any <c>X-Fundament-*</c> header the client sent (so nobody can claim to be
/// a user by header), then tells the upstream who the caller is (<c>X-Fundament-User</c>,
/// <c>X-Fundament-Roles</c>), which request this is (<c>X-Request-Id</c>, echoed to the client) and
/// how many gateways it has passed (<c>X-Fundament-Hops</c>).
/// W3C <c>traceparent</c> is propagated by the forwarder from the current activity.
/// </summary>
internal sealed partial class IdentityHeadersTransform : ITransformProvider
{
    public const string Prefix = "X-Fundament-";

    /// <summary>How many Fundament gateways a request has passed; a request arriving with <see cref="MaxHops"/> is refused (508), so gateways pointed at each other cannot loop.</summary>
    public const string HopsHeader = "X-Fundament-Hops";

    public const int MaxHops = 3;

    /// <summary>The hop count a request arrived with (0 when absent or not a small number).</summary>
    public static int HopsOf(Microsoft.AspNetCore.Http.HttpRequest request) =>
        int.TryParse(request.Headers[HopsHeader].ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var hops) && hops is >= 0 and <= 100 ? hops : 0;

    [GeneratedRegex("^[A-Za-z0-9._-]{1,128}$")]
    private static partial Regex RequestIdPattern();

    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        context.AddRequestTransform(transform =>
        {
            var headers = transform.ProxyRequest.Headers;
            // The names come from the incoming request (Kestrel's header dictionary: plain strings).
            // Enumerating the outgoing HttpRequestHeaders instead would parse every value (an
            // Authorization header into an AuthenticationHeaderValue) on every request.
            foreach (var header in transform.HttpContext.Request.Headers)
            {
                if (header.Key.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
                {
                    headers.Remove(header.Key);
                }
            }
            var user = transform.HttpContext.User;
            if (user.Identity?.IsAuthenticated == true)
            {
                if (user.ActorId() is { } actor)
                {
                    headers.TryAddWithoutValidation("X-Fundament-User", actor);
                }
                var roles = user.RolesOf();
                if (roles.Count > 0)
                {
                    headers.TryAddWithoutValidation("X-Fundament-Roles", string.Join(",", roles));
                }
            }
            headers.TryAddWithoutValidation(HopsHeader, (HopsOf(transform.HttpContext.Request) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            var incoming = transform.HttpContext.Request.Headers["X-Request-Id"].ToString();
            var requestId = RequestIdPattern().IsMatch(incoming) ? incoming : Activity.Current?.TraceId.ToString() ?? Guid.NewGuid().ToString("N");
            headers.Remove("X-Request-Id");
            headers.TryAddWithoutValidation("X-Request-Id", requestId);
            transform.HttpContext.Response.Headers["X-Request-Id"] = requestId;
            return ValueTask.CompletedTask;
        });
    }
}
