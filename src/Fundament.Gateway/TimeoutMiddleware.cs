using Microsoft.AspNetCore.Http.Timeouts;
using Yarp.ReverseProxy.Forwarder;

namespace Fundament.Gateway;

/// <summary>
/// A route's timeout cancels the request through ASP.NET Core's request-timeout middleware; YARP
/// sees only the cancellation and would answer 400 as if the client had gone. This turns it into
/// the 504 it is (problem details are written by the status-code pages).
/// </summary>
internal sealed class TimeoutMiddleware(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context)
    {
        await next(context);
        if (TimedOut(context) && !context.Response.HasStarted)
        {
            context.Response.Clear();
            context.Response.StatusCode = StatusCodes.Status504GatewayTimeout;
        }
    }

    /// <summary>Whether the last forwarding attempt was cut off by the route's timeout (not by the client).</summary>
    public static bool TimedOut(HttpContext context) =>
        context.Features.Get<IForwarderErrorFeature>()?.Error is ForwarderError.RequestTimedOut
        || (context.Features.Get<IForwarderErrorFeature>()?.Error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled
            && context.Features.Get<IHttpRequestTimeoutFeature>()?.RequestTimeoutToken.IsCancellationRequested == true);
}
