using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Infrastructure;

/// <summary>Every HTTP endpoint the server maps, so sweeping tests cover endpoints added later too.</summary>
public static class EndpointCatalog
{
    /// <summary>(method, route template with <c>{parameter}</c> placeholders, requires a caller).</summary>
    public static IEnumerable<(string Method, string Template, bool Protected)> All(FundamentFactory factory)
    {
        var source = factory.Services.GetRequiredService<EndpointDataSource>();
        foreach (var endpoint in source.Endpoints.OfType<RouteEndpoint>())
        {
            var template = "/" + string.Join("/", endpoint.RoutePattern.PathSegments.Select(segment => string.Concat(segment.Parts.Select(part => part switch
            {
                RoutePatternLiteralPart literal => literal.Content,
                RoutePatternParameterPart parameter => "{" + parameter.Name + "}",
                _ => "",
            }))));
            var isProtected = endpoint.Metadata.GetMetadata<IAllowAnonymous>() is null && endpoint.Metadata.GetMetadata<IAuthorizeData>() is not null;
            foreach (var method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
            {
                yield return (method, template, isProtected);
            }
        }
    }

    /// <summary>The template with every parameter replaced by <paramref name="value"/>.</summary>
    public static string Fill(string template, string value) =>
        System.Text.RegularExpressions.Regex.Replace(template, "{[^}]+}", value.Replace("$", "$$", StringComparison.Ordinal));
}
