using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Json;

namespace Fundament.Core.Http;

public static class HttpServiceCollectionExtensions
{
    /// <summary>JSON, problem details and error handling shared by every module's API.</summary>
    public static IServiceCollection AddFundamentHttp(this IServiceCollection services)
    {
        services.Configure<JsonOptions>(options =>
        {
            // A misspelt property is a client bug worth reporting, not silently ignoring.
            options.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
            options.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
            options.SerializerOptions.Converters.Add(new JsonStringEnumConverter());
        });
        services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);
        services.AddProblemDetails(options =>
        {
            options.CustomizeProblemDetails = context =>
            {
                context.ProblemDetails.Instance ??= context.HttpContext.Request.Path;
                context.ProblemDetails.Extensions.TryAdd("traceId", System.Diagnostics.Activity.Current?.TraceId.ToString() ?? context.HttpContext.TraceIdentifier);
            };
        });
        services.AddExceptionHandler<ProblemExceptionHandler>();
        return services;
    }

    /// <summary>Error handling, problem details for bare status codes, and the body size cap.</summary>
    public static IApplicationBuilder UseFundamentHttp(this IApplicationBuilder app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseMiddleware<RequestBodyLimitMiddleware>();
        return app;
    }
}
