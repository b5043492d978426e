using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Yarp.ReverseProxy.Model;

namespace Fundament.Gateway;

/// <summary>
/// A request whose declared length exceeds its route's <c>maxBodySize</c> gets 413 problem details
/// before anything reaches the upstream. Streamed bodies are held to the same limit by the server
/// (YARP sets it per route), which cuts them off when they grow past it.
/// </summary>
internal sealed class BodySizeMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext context)
    {
        var limit = context.GetReverseProxyFeature().Route.Config.MaxRequestBodySize;
        if (limit is >= 0 && context.Request.ContentLength > limit)
        {
            return RefuseAsync(context, limit.Value);
        }
        return next(context);
    }

    private static async Task RefuseAsync(HttpContext context, long limit)
    {
        context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false })
        {
            // Do not read what the client keeps sending; the connection closes after the answer.
            context.Response.Headers.Connection = "close";
        }
        await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = new ProblemDetails
            {
                Status = 413,
                Title = "Request body too large",
                Detail = $"This route accepts bodies up to {limit} bytes.",
            },
        });
    }
}
