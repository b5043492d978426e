using Fundament.Core.Egress;
using Fundament.Registry.Instances;
using Fundament.Registry.Monitoring;
using Fundament.Registry.Routes;

namespace Fundament.Registry;

/// <summary>
/// Module <c>registry</c>: service instances, their health checks, route claims and the routing
/// table the gateway follows. Control nodes run the health monitor (and, when enabled, register
/// Fundament itself).
/// </summary>
public sealed class RegistryModule : FundamentModule
{
    public override string Name => "registry";

    public override IReadOnlyDictionary<string, string> Uses { get; } = new Dictionary<string, string>
    {
        ["config"] = "a registering instance gets no configuration in its answer.",
        ["vault"] = "a registering instance is told of no readable secrets.",
    };

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(RegistryPermissions.Read, "Discovery: list services and instances.", BuiltInRoles.Service),
        new(RegistryPermissions.RegisterOwn, "Register instances of the service named like one's own client.", BuiltInRoles.Service),
        new(RegistryPermissions.Write, "Register any service, deregister any instance, manage grants and route claims."),
        new(RegistryPermissions.Passthrough, "Declare routes whose callers' bearer tokens reach the service (forwardAuthorization: passthrough)."),
    ];

    public override IReadOnlyList<EventTypeDefinition> EventTypes { get; } =
    [
        new(RegistryEvents.Registered, "An instance registered; data holds the instance id, service, its first status and changeId. Audience: the principal that registered it."),
        new(RegistryEvents.StatusChanged, "An instance's health status changed (passing, warning, critical); data holds from, to, the check output and changeId."),
        new(RegistryEvents.Deregistered, "An instance was deregistered (by its owner, an admin, or after being critical for deregisterAfter); data holds the reason as output."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<RegistryOptions, RegistryOptionsValidator>(context.Configuration, RegistryOptions.SectionName);
        services.AddSettings<SelfRegistrationOptions, SelfRegistrationOptionsValidator>(context.Configuration, SelfRegistrationOptions.SectionName);
        services.TryAddSingleton<RegistryStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IBoundGrants, RegistryBoundGrants>());
        services.TryAddSingleton<RegistryMetrics>();
        services.TryAddSingleton<RouteClaimStore>();
        services.TryAddSingleton<ServiceDirectory>();
        services.TryAddSingleton<IRoutingTableSource>(sp => sp.GetRequiredService<ServiceDirectory>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAlertConditionSource, RegistryAlertConditions>());
        services.TryAddSingleton<HttpChecker>();
        // No client-wide timeout: each check has its own (up to 5 minutes, above HttpClient's 100 s default).
        services.AddHttpClient(HttpChecker.ClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(sp => sp.GetRequiredService<EgressConnector>().Guard(new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                UseCookies = false,
                ConnectTimeout = TimeSpan.FromSeconds(5),
                PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            }, EgressPurpose.Upstreams));
        services.TryAddSingleton<HealthMonitor>();
        services.TryAddSingleton<RegistryEventPublisher>();
        if (context.Runs(FundamentRoles.Control) && context.Enabled(RegistryOptions.SectionName, nameof(RegistryOptions.EventsEnabled)))
        {
            services.AddHostedService(sp => sp.GetRequiredService<RegistryEventPublisher>());
        }
        if (context.Runs(FundamentRoles.Control) && context.Enabled(RegistryOptions.SectionName, nameof(RegistryOptions.MonitorEnabled)))
        {
            services.AddHostedService(sp => sp.GetRequiredService<HealthMonitor>());
        }
        if ((context.Runs(FundamentRoles.Control) || context.Runs(FundamentRoles.Media))
            && context.Enabled(SelfRegistrationOptions.SectionName, nameof(SelfRegistrationOptions.Enabled), false))
        {
            services.AddHostedService<SelfRegistration>();
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapRegistryApi();
}
