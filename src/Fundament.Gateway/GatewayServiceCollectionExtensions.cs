using Fundament.Http;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Fundament.Gateway;

public static class GatewayServiceCollectionExtensions
{
    /// <summary>Module <c>gateway</c> (needs a registry: <c>IServiceDirectory</c>).</summary>
    public static IServiceCollection AddGateway(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GatewayOptions>()
            .Bind(configuration.GetSection(GatewayOptions.SectionName))
            .Validate(o => o.Ports().Count > 0, "Fundament:Gateway:Urls must name at least one URL with a port.")
            .Validate(o => o.DefaultTimeout > TimeSpan.Zero && o.DefaultTimeout <= TimeSpan.FromHours(1), "Fundament:Gateway:DefaultTimeout must be between 0 and 01:00:00.")
            .Validate(o => o.FailureThreshold is >= 1 and <= 1000, "Fundament:Gateway:FailureThreshold must be between 1 and 1000.")
            .Validate(o => o.ReactivationPeriod >= TimeSpan.FromSeconds(1), "Fundament:Gateway:ReactivationPeriod must be at least 00:00:01.")
            .Validate(o => o.RateLimits.All(r => RateLimiting.Problem(r.Key, r.Value) is null),
                "Fundament:Gateway:RateLimits has an invalid policy (Algorithm fixed|sliding|tokenBucket|concurrency, positive limits and windows, PartitionBy global|user|ip|apiKey|header:<name>).")
            .Validate(o => o.MaxRetries is >= 0 and <= 5, "Fundament:Gateway:MaxRetries must be between 0 and 5.")
            .Validate(o => o.RetryBudgetPercent is >= 0 and <= 100, "Fundament:Gateway:RetryBudgetPercent must be between 0 and 100.")
            .Validate(o => o.RetryBudgetMinPerSecond >= 0, "Fundament:Gateway:RetryBudgetMinPerSecond must not be negative.")
            .Validate(o => o.RetryBodyLimit is >= 0 and <= 16 << 20, "Fundament:Gateway:RetryBodyLimit must be between 0 and 16 MiB.")
            .Validate(o => o.Cors.All(c => c.Value.AllowedOrigins.Length > 0 && !(c.Value.AllowCredentials && c.Value.AllowedOrigins.Contains("*"))),
                "Fundament:Gateway:Cors: every policy needs AllowedOrigins, and AllowCredentials cannot be combined with origin *.")
            .ValidateOnStart();
        services.AddGatewayRateLimits();
        services.AddCors();
        services.AddOptions<CorsOptions>().Configure<IOptions<GatewayOptions>>((cors, gateway) =>
        {
            foreach (var (name, p) in gateway.Value.Cors)
            {
                cors.AddPolicy(name, policy =>
                {
                    if (p.AllowedOrigins.Contains("*"))
                    {
                        policy.AllowAnyOrigin();
                    }
                    else
                    {
                        policy.WithOrigins(p.AllowedOrigins);
                    }
                    policy.WithMethods(p.AllowedMethods).WithHeaders(p.AllowedHeaders).WithExposedHeaders(p.ExposedHeaders).SetPreflightMaxAge(p.MaxAge);
                    if (p.AllowCredentials)
                    {
                        policy.AllowCredentials();
                    }
                });
            }
        });
        services.AddSingleton<IPassiveHealthCheckPolicy, ConsecutiveFailuresPolicy>();
        services.AddSingleton<ITransformProvider, RetryTransform>();
        services.AddSingleton<RegistryProxyConfigProvider>();
        services.AddSingleton<IProxyConfigProvider>(sp => sp.GetRequiredService<RegistryProxyConfigProvider>());
        services.AddHostedService(sp => sp.GetRequiredService<RegistryProxyConfigProvider>());
        services.AddSingleton<ITransformProvider, IdentityHeadersTransform>();
        services.AddSingleton<IAuthorizationPolicyProvider, RolePolicyProvider>();
        services.AddReverseProxy().LoadFromConfig(configuration.GetSection(GatewayOptions.SectionName + ":Static")).AddConfigFilter<GatewayDefaultsFilter>();
        services.AddRequestTimeouts();
        return services;
    }

    /// <summary>
    /// Sends every request that arrives on a gateway port to the proxy pipeline (its own routing,
    /// authentication, authorization, timeouts, access log); the API does not answer there.
    /// Call before the API's middleware.
    /// </summary>
    public static IApplicationBuilder UseGateway(this IApplicationBuilder app)
    {
        var ports = app.ApplicationServices.GetRequiredService<IOptions<GatewayOptions>>().Value.Ports();
        app.MapWhen(context => ports.Contains(context.Connection.LocalPort), gateway =>
        {
            gateway.Use((context, next) =>
            {
                // The host matched API endpoints before this branch; the gateway routes afresh.
                context.SetEndpoint(null);
                context.Request.RouteValues.Clear();
                return next(context);
            });
            gateway.UseMiddleware<AccessLogMiddleware>();
            gateway.UseExceptionHandler();
            gateway.UseStatusCodePages();
            gateway.UseRouting();
            gateway.UseCors();
            gateway.UseAuthentication();
            gateway.UseAuthorization();
            gateway.UseRateLimiter();
            gateway.UseRequestTimeouts();
            gateway.UseEndpoints(endpoints => endpoints.MapReverseProxy(proxy =>
            {
                proxy.UseMiddleware<BodySizeMiddleware>();
                proxy.UseMiddleware<TimeoutMiddleware>();
                proxy.UseMiddleware<RetryMiddleware>();
                proxy.UseSessionAffinity();
                proxy.UseLoadBalancing();
                proxy.UsePassiveHealthChecks();
            }));
        });
        return app;
    }
}
