using System.Text.Json;
using Fundament.Hosting;
using Fundament.Modules;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.LoadBalancing;

namespace Fundament.Gateway;

/// <summary>
/// Builds YARP routes and clusters from the registry and follows it with a blocking watch, so a
/// route appears or disappears within a second of the registry change. YARP swaps configurations
/// without dropping requests in flight. Only passing instances become destinations; a service
/// whose instances declare no route is not exposed.
/// </summary>
internal sealed partial class RegistryProxyConfigProvider(
    IServiceDirectory directory,
    IOptions<GatewayOptions> options,
    ILogger<RegistryProxyConfigProvider> logger) : BackgroundService, IProxyConfigProvider
{
    public const string ServiceMetadata = "fundament.service";

    private volatile Snapshot _current = new([], [], new CancellationTokenSource());

    public IProxyConfig GetConfig() => _current;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        long? index = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var (next, instances) = await directory.RoutableInstancesAsync(index, TimeSpan.FromMinutes(5), stoppingToken);
                if (next != index)
                {
                    Apply(instances);
                    index = next;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Keep serving the last good configuration.
                LogRefreshFailed(logger, ex);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    internal void Apply(IReadOnlyList<RoutableInstance> instances)
    {
        var o = options.Value;
        var routes = new List<RouteConfig>();
        var clusters = new List<ClusterConfig>();
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var service in instances.GroupBy(i => i.Service, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var declared = service.SelectMany(i => ParseRoutes(i.RoutesJson)).GroupBy(r => r.Path, StringComparer.OrdinalIgnoreCase).Select(g => g.First()).ToList();
            if (declared.Count == 0)
            {
                continue;
            }
            var clusterId = "svc-" + service.Key;
            clusters.Add(new ClusterConfig
            {
                ClusterId = clusterId,
                LoadBalancingPolicy = LoadBalancingPolicies.PowerOfTwoChoices,
                HealthCheck = new HealthCheckConfig
                {
                    Passive = new PassiveHealthCheckConfig { Enabled = true, Policy = HealthCheckConstants.PassivePolicy.TransportFailureRate, ReactivationPeriod = o.ReactivationPeriod },
                },
                Destinations = service.Where(i => i.Status == "passing").ToDictionary(
                    i => i.InstanceId,
                    i => new DestinationConfig { Address = $"{i.Scheme}://{(i.Address.Contains(':', StringComparison.Ordinal) ? $"[{i.Address}]" : i.Address)}:{i.Port}/" },
                    StringComparer.Ordinal),
            });
            var n = 0;
            foreach (var route in declared)
            {
                if (!taken.Add(route.Path))
                {
                    LogDuplicateRoute(logger, route.Path, service.Key);
                    continue;
                }
                var transforms = new List<IReadOnlyDictionary<string, string>>();
                if (route.StripPrefix is { Length: > 0 } prefix)
                {
                    transforms.Add(new Dictionary<string, string> { ["PathRemovePrefix"] = prefix });
                }
                routes.Add(new RouteConfig
                {
                    RouteId = $"{clusterId}-{n++}",
                    ClusterId = clusterId,
                    Match = new RouteMatch { Path = route.Path },
                    AuthorizationPolicy = route.Auth switch
                    {
                        "anonymous" => "anonymous",
                        null or "authenticated" => Fundament.Security.Policies.Authenticated,
                        var role => role,
                    },
                    Timeout = route.Timeout ?? o.DefaultTimeout,
                    RateLimiterPolicy = route.RateLimit,
                    Transforms = transforms,
                    Metadata = new Dictionary<string, string> { [ServiceMetadata] = service.Key },
                });
            }
        }
        var previous = _current;
        _current = new Snapshot(routes, clusters, new CancellationTokenSource());
        previous.Changed.Cancel();
        LogApplied(logger, routes.Count, clusters.Count);
    }

    private IEnumerable<DeclaredRoute> ParseRoutes(string json)
    {
        var routes = new List<DeclaredRoute>();
        try
        {
            using var document = JsonDocument.Parse(json);
            foreach (var route in document.RootElement.EnumerateArray())
            {
                var path = route.TryGetProperty("path", out var p) ? p.GetString() : null;
                var auth = route.TryGetProperty("auth", out var a) ? a.GetString() : null;
                var strip = route.TryGetProperty("stripPrefix", out var s) ? s.GetString() : null;
                TimeSpan? timeout = route.TryGetProperty("timeout", out var t) && Durations.TryParse(t.GetString(), out var parsed) ? parsed : null;
                var rateLimit = route.TryGetProperty("rateLimit", out var rl) ? rl.GetString() : null;
                if (rateLimit is not null && !options.Value.RateLimits.ContainsKey(rateLimit))
                {
                    // An unknown policy name would make YARP reject the whole table; serve the route unlimited and say so.
                    LogUnknownRateLimit(logger, path ?? "(none)", rateLimit);
                    rateLimit = null;
                }
                if (path is null || !ValidTemplate(path) || (auth is not (null or "anonymous" or "authenticated") && auth?.StartsWith("role:", StringComparison.Ordinal) != true))
                {
                    LogInvalidRoute(logger, path ?? "(none)");
                    continue;
                }
                routes.Add(new DeclaredRoute(path, auth, strip, timeout, rateLimit));
            }
        }
        catch (JsonException)
        {
        }
        return routes;
    }

    private static bool ValidTemplate(string path)
    {
        try
        {
            RoutePatternFactory.Parse(path);
            return true;
        }
        catch (RoutePatternException)
        {
            return false;
        }
    }

    private sealed record DeclaredRoute(string Path, string? Auth, string? StripPrefix, TimeSpan? Timeout, string? RateLimit);

    private sealed class Snapshot(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters, CancellationTokenSource changed) : IProxyConfig
    {
        public IReadOnlyList<RouteConfig> Routes { get; } = routes;

        public IReadOnlyList<ClusterConfig> Clusters { get; } = clusters;

        public IChangeToken ChangeToken { get; } = new CancellationChangeToken(changed.Token);

        public CancellationTokenSource Changed { get; } = changed;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Gateway configuration: {Routes} routes over {Clusters} services")]
    private static partial void LogApplied(ILogger logger, int routes, int clusters);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Route {Path} of {Service} is already served by another service; ignored")]
    private static partial void LogDuplicateRoute(ILogger logger, string path, string service);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Route {Path} names rate limit {Policy}, which is not configured; served without a limit")]
    private static partial void LogUnknownRateLimit(ILogger logger, string path, string policy);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ignoring invalid gateway route {Path}")]
    private static partial void LogInvalidRoute(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "Refreshing gateway routes from the registry failed")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
