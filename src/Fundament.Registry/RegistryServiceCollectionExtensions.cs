using Fundament.Egress;
using Fundament.Registry.Instances;
using Fundament.Registry.Monitoring;
using Fundament.Registry.Routes;
using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Registry;

public static class RegistryServiceCollectionExtensions
{
    /// <summary>Module <c>registry</c>; with <paramref name="runMonitor"/> this process also checks instances.</summary>
    public static IServiceCollection AddRegistry(this IServiceCollection services, IConfiguration configuration, bool runMonitor)
    {
        services.AddOptions<RegistryOptions>()
            .Bind(configuration.GetSection(RegistryOptions.SectionName))
            .Validate(o => o.MonitorInterval >= TimeSpan.FromMilliseconds(100) && o.MonitorInterval <= TimeSpan.FromMinutes(1), "Fundament:Registry:MonitorInterval must be between 00:00:00.1 and 00:01:00.")
            .Validate(o => o.MaxConcurrentChecks is >= 1 and <= 1024, "Fundament:Registry:MaxConcurrentChecks must be between 1 and 1024.")
            .Validate(o => o.MinCheckInterval >= TimeSpan.FromMilliseconds(100), "Fundament:Registry:MinCheckInterval must be at least 00:00:00.1.")
            .Validate(o => o.DefaultDeregisterAfter is null || o.DefaultDeregisterAfter >= TimeSpan.FromSeconds(1), "Fundament:Registry:DefaultDeregisterAfter must be at least 00:00:01.")
            .Validate(o => o.HistoryPerInstance is >= 1 and <= 10_000, "Fundament:Registry:HistoryPerInstance must be between 1 and 10000.")
            .ValidateOnStart();
        services.AddMigrations(new RegistryMigrations());
        services.TryAddSingleton<RegistryStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Fundament.Security.IBoundGrants, Fundament.Registry.Instances.RegistryBoundGrants>());
        services.TryAddSingleton<RegistryMetrics>();
        services.TryAddSingleton<RouteClaimStore>();
        services.TryAddSingleton<ServiceDirectory>();
        services.TryAddSingleton<Fundament.Modules.IServiceDirectory>(sp => sp.GetRequiredService<ServiceDirectory>());
        services.TryAddSingleton<IRoutingTableSource>(sp => sp.GetRequiredService<ServiceDirectory>());
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
        if (runMonitor && configuration.GetValue(RegistryOptions.SectionName + ":" + nameof(RegistryOptions.MonitorEnabled), true))
        {
            services.AddHostedService(sp => sp.GetRequiredService<HealthMonitor>());
        }
        services.AddOptions<SelfRegistrationOptions>()
            .Bind(configuration.GetSection(RegistryOptions.SectionName + ":Self"))
            .Validate(o => o.Ttl >= TimeSpan.FromSeconds(3) && o.Ttl <= TimeSpan.FromMinutes(10), "Fundament:Registry:Self:Ttl must be between 00:00:03 and 00:10:00.")
            .Validate(o => o.AdvertiseUrl is null || Uri.TryCreate(o.AdvertiseUrl, UriKind.Absolute, out var u) && u.Scheme is "http" or "https", "Fundament:Registry:Self:AdvertiseUrl must be an absolute http(s) URL.")
            .Validate(o => o.Paths.Length is > 0 and <= 32 && o.Paths.All(p => p.StartsWith('/')), "Fundament:Registry:Self:Paths must hold 1 to 32 paths starting with '/'.")
            .Validate(o => o.Paths.All(p => new RouteOwnership([]).Check(RoutePaths.FundamentService, p).Allowed),
                "Fundament:Registry:Self:Paths must lie under Fundament's reserved paths (" + string.Join(", ", RoutePaths.Reserved) + ").")
            .ValidateOnStart();
        if (runMonitor && configuration.GetValue(RegistryOptions.SectionName + ":Self:Enabled", false))
        {
            services.AddHostedService<SelfRegistration>();
        }
        services.AddPermissions(RegistryPermissions.Read, RegistryPermissions.RegisterOwn, RegistryPermissions.Write, RegistryPermissions.Passthrough);
        return services;
    }

    public static IEndpointRouteBuilder MapRegistry(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapRegistryApi();
        return endpoints;
    }
}
