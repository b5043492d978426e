using System.Globalization;
using Fundament.Core.Egress;
using Fundament.Gateway.Policies;
using Fundament.Registry.Routes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.Hosting;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Fundament.Gateway;

/// <summary>
/// Module <c>gateway</c>. On every node: its options and its policies (rate limits and CORS, seeded
/// from configuration and changed through <c>/api/v1/gateway/policies</c> on control nodes), and
/// the route check that makes the registry refuse unknown policy names at registration. On
/// gateway nodes: the edge, YARP fed by the registry (<see cref="IRoutingTableSource"/>), on its
/// own ports.
/// </summary>
public sealed class GatewayModule : FundamentModule
{
    public override string Name => "gateway";

    public override IReadOnlyList<string> Requires { get; } = ["registry", "identity"];

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(GatewayPermissions.Read, "Read gateway policies."),
        new(GatewayPermissions.Write, "Create, change and delete gateway policies."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<GatewayOptions, GatewayOptionsValidator>(context.Configuration, GatewayOptions.SectionName);
        services.TryAddSingleton<GatewayPolicyStore>();
        services.TryAddSingleton<GatewayPolicyCatalog>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, GatewayPolicyCatalog>(sp => sp.GetRequiredService<GatewayPolicyCatalog>()));
        services.AddHostedService(sp => sp.GetRequiredService<GatewayPolicyCatalog>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IRouteValidator, PolicyRouteValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IRouteClaimSource, StaticRouteClaims>());
        if (context.Runs(FundamentRoles.Gateway))
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
            services.AddReverseProxy().LoadFromConfig(context.Configuration.GetSection(GatewayOptions.SectionName + ":Static")).AddConfigFilter<GatewayDefaultsFilter>();
            services.Replace(ServiceDescriptor.Singleton<IForwarderHttpClientFactory, GuardedForwarderHttpClientFactory>());
            services.AddRequestTimeouts();
        }
    }

    /// <summary>
    /// Sends every request that arrives on a gateway port to the proxy pipeline (its own routing,
    /// authentication, authorization, timeouts, access log); the API does not answer there.
    /// </summary>
    public override void UseMiddleware(IApplicationBuilder app, ModuleContext context)
    {
        if (!context.Runs(FundamentRoles.Gateway))
        {
            return;
        }
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
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapGatewayPoliciesApi();
}
