using System.Globalization;
using Fundament.Egress;
using Fundament.Gateway.Policies;
using Fundament.Hosting;
using Fundament.Http;
using Fundament.Registry.Routes;
using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Fundament.Gateway;

public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// The gateway's shared data, in every role: its options, its policies (rate limits and CORS,
    /// seeded from configuration and changed through <c>/api/v1/gateway/policies</c>), and the
    /// route check that makes the registry refuse unknown policy names at registration.
    /// </summary>
    public static IServiceCollection AddGatewayPolicies(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GatewayOptions>()
            .Bind(configuration.GetSection(GatewayOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>());
        services.AddMigrations(new GatewayMigrations());
        services.TryAddSingleton<GatewayPolicyStore>();
        services.TryAddSingleton<GatewayPolicyCatalog>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, GatewayPolicyCatalog>(sp => sp.GetRequiredService<GatewayPolicyCatalog>()));
        services.AddHostedService(sp => sp.GetRequiredService<GatewayPolicyCatalog>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IRouteValidator, PolicyRouteValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IRouteClaimSource, StaticRouteClaims>());
        services.AddPermissions(GatewayPermissions.Read, GatewayPermissions.Write);
        return services;
    }

    /// <summary>Module <c>gateway</c>, the edge: YARP fed by the registry (<see cref="IRoutingTableSource"/>). Needs <see cref="AddGatewayPolicies"/>.</summary>
    public static IServiceCollection AddGateway(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddGatewayRateLimits();
        services.AddCors();
        services.Replace(ServiceDescriptor.Singleton<ICorsPolicyProvider, CatalogCorsPolicyProvider>());
        services.AddSingleton<IPassiveHealthCheckPolicy, ConsecutiveFailuresPolicy>();
        services.AddSingleton<ITransformProvider, RetryTransform>();
        services.AddSingleton<RegistryProxyConfigProvider>();
        services.AddSingleton<IProxyConfigProvider>(sp => sp.GetRequiredService<RegistryProxyConfigProvider>());
        services.AddHostedService(sp => sp.GetRequiredService<RegistryProxyConfigProvider>());
        services.AddSingleton<ITransformProvider, IdentityHeadersTransform>();
        services.AddSingleton<ITransformProvider, ForwardAuthorizationTransform>();
        services.AddSingleton<IAuthorizationPolicyProvider, RolePolicyProvider>();
        services.AddReverseProxy().LoadFromConfig(configuration.GetSection(GatewayOptions.SectionName + ":Static")).AddConfigFilter<GatewayDefaultsFilter>();
        services.Replace(ServiceDescriptor.Singleton<IForwarderHttpClientFactory, GuardedForwarderHttpClientFactory>());
        services.AddRequestTimeouts();
        return services;
    }

    /// <summary>The gateway's API: <c>/api/v1/gateway/policies</c>.</summary>
    public static IEndpointRouteBuilder MapGateway(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGatewayPoliciesApi();
        return endpoints;
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
            gateway.Use(async (context, next) =>
            {
                // A request that has already crossed this many gateways is going round in circles.
                if (IdentityHeadersTransform.HopsOf(context.Request) >= IdentityHeadersTransform.MaxHops)
                {
                    await TypedResults.Problem(statusCode: StatusCodes.Status508LoopDetected, title: "Loop detected",
                        detail: "The request has passed through too many Fundament gateways.").ExecuteAsync(context);
                    return;
                }
                await next(context);
            });
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

    /// <summary>Every setting of <c>Fundament:Gateway</c>, each problem naming its key.</summary>
    private sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
    {
        public ValidateOptionsResult Validate(string? name, GatewayOptions o)
        {
            const string S = GatewayOptions.SectionName;
            var errors = new List<string>();
            if (o.Ports().Count == 0)
            {
                errors.Add($"{S}:{nameof(o.Urls)} must name at least one URL with a port.");
            }
            if (o.DefaultTimeout <= TimeSpan.Zero || o.DefaultTimeout > TimeSpan.FromHours(1))
            {
                errors.Add($"{S}:{nameof(o.DefaultTimeout)} must be between 0 and 01:00:00.");
            }
            if (o.FailureThreshold is < 1 or > 1000)
            {
                errors.Add($"{S}:{nameof(o.FailureThreshold)} must be between 1 and 1000.");
            }
            if (o.ReactivationPeriod < TimeSpan.FromSeconds(1))
            {
                errors.Add($"{S}:{nameof(o.ReactivationPeriod)} must be at least 00:00:01.");
            }
            if (o.MaxRetries is < 0 or > 5)
            {
                errors.Add($"{S}:{nameof(o.MaxRetries)} must be between 0 and 5.");
            }
            if (o.RetryBudgetPercent is < 0 or > 100)
            {
                errors.Add($"{S}:{nameof(o.RetryBudgetPercent)} must be between 0 and 100.");
            }
            if (o.RetryBudgetMinPerSecond < 0)
            {
                errors.Add($"{S}:{nameof(o.RetryBudgetMinPerSecond)} must not be negative.");
            }
            if (o.RetryBodyLimit is < 0 or > 16 << 20)
            {
                errors.Add($"{S}:{nameof(o.RetryBodyLimit)} must be between 0 and 16 MiB.");
            }
            foreach (var (policy, options) in o.RateLimits)
            {
                if (!GatewayPolicyDefinitions.IsName(policy))
                {
                    errors.Add($"{S}:{nameof(o.RateLimits)}:{policy}: the name must be 1-64 letters, digits, '-', '_' or '.' (not 'default' or 'disable').");
                }
                errors.AddRange(RateLimiting.Problems(options).Select(p => $"{S}:{nameof(o.RateLimits)}:{policy}:{Pascal(p.Field)}: {p.Message}"));
            }
            foreach (var (policy, options) in o.Cors)
            {
                if (!GatewayPolicyDefinitions.IsName(policy))
                {
                    errors.Add($"{S}:{nameof(o.Cors)}:{policy}: the name must be 1-64 letters, digits, '-', '_' or '.' (not 'default' or 'disable').");
                }
                errors.AddRange(GatewayPolicyDefinitions.CorsProblems(options).Select(p => $"{S}:{nameof(o.Cors)}:{policy}:{Pascal(p.Field)}: {p.Message}"));
            }
            return errors.Count > 0 ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
        }

        private static string Pascal(string field) => char.ToUpper(field[0], CultureInfo.InvariantCulture) + field[1..];
    }
}
