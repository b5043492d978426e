using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Metadata;

namespace Fundament.Core.Http;

/// <summary>
/// Caps request bodies at <c>Fundament:MaxRequestBodyBytes</c>: a declared length over the cap is
/// refused before reading, and the server's own limit stops an undeclared (chunked) body.
/// Endpoints that take large uploads raise their own limit with the request-size metadata.
/// </summary>
internal sealed class RequestBodyLimitMiddleware(RequestDelegate next, IOptions<FundamentOptions> options)
{
    private readonly long _limit = options.Value.MaxRequestBodyBytes;

    public async Task InvokeAsync(HttpContext context)
    {
        var limit = context.GetEndpoint()?.Metadata.GetMetadata<IRequestSizeLimitMetadata>()?.MaxRequestBodySize ?? _limit;
        if (context.Request.ContentLength > limit)
        {
            await Results.Problem(
                statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "Request body too large",
                detail: $"The body is {context.Request.ContentLength} bytes; this endpoint accepts at most {limit}.").ExecuteAsync(context);
            return;
        }
        var feature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (feature is { IsReadOnly: false })
        {
            feature.MaxRequestBodySize = limit;
        }
        await next(context);
    }
}
