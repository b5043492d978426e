using System.Globalization;
using System.Text.Json;
using Fundament.Hosting;
using Fundament.Modules;
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
    public const string ApiVersionHeader = "api-version";

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
        var clusters = new Dictionary<string, ClusterConfig>(StringComparer.Ordinal);
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var service in instances.GroupBy(i => i.Service, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var declared = service.SelectMany(i => ParseRoutes(service.Key, i.RoutesJson)).GroupBy(r => r.Path, StringComparer.OrdinalIgnoreCase).Select(g => g.First()).ToList();
            if (declared.Count == 0)
            {
                continue;
            }
            var passing = service.Where(i => i.Status == "passing").ToList();
            // API versions: when instances carry more than one major version, each gets /v<N>/... and
            // api-version: N routes; requests naming no version go to the newest.
            var versions = passing.Select(i => ApiVersion(i.Version)).OfType<int>().Distinct().Order().ToList();
            var n = 0;
            foreach (var route in declared)
            {
                if (!taken.Add(route.Path))
                {
                    LogDuplicateRoute(logger, route.Path, service.Key);
                    continue;
                }
                if (versions.Count < 2)
                {
                    routes.Add(Route(service.Key, $"svc-{service.Key}-{n++}", Cluster(service.Key, null, passing, route.LoadBalancing), route, route.Path, null, null));
                    continue;
                }
                var latest = versions[^1];
                routes.Add(Route(service.Key, $"svc-{service.Key}-{n++}", Cluster(service.Key, latest, passing, route.LoadBalancing), route, route.Path, null, null));
                foreach (var version in versions)
                {
                    var cluster = Cluster(service.Key, version, passing, route.LoadBalancing);
                    var prefix = "/v" + version.ToString(CultureInfo.InvariantCulture);
                    if (taken.Add(prefix + route.Path))
                    {
                        routes.Add(Route(service.Key, $"svc-{service.Key}-{n++}", cluster, route, prefix + route.Path, null, prefix));
                    }
                    routes.Add(Route(service.Key, $"svc-{service.Key}-{n++}", cluster, route, route.Path, version, null));
                }
            }
        }

        string Cluster(string service, int? version, List<RoutableInstance> passing, string balancing)
        {
            var id = "svc-" + service + (version is { } v ? "@v" + v.ToString(CultureInfo.InvariantCulture) : "")
                + (balancing == LoadBalancingPolicies.PowerOfTwoChoices ? "" : "~" + balancing);
            if (!clusters.ContainsKey(id))
            {
                clusters[id] = new ClusterConfig
                {
                    ClusterId = id,
                    LoadBalancingPolicy = balancing,
                    HealthCheck = new HealthCheckConfig
                    {
                        Passive = new PassiveHealthCheckConfig { Enabled = true, Policy = ConsecutiveFailuresPolicy.PolicyName, ReactivationPeriod = o.ReactivationPeriod },
                    },
                    Destinations = passing.Where(i => version is null || ApiVersion(i.Version) == version).ToDictionary(
                        i => i.InstanceId,
                        i => new DestinationConfig { Address = $"{i.Scheme}://{(i.Address.Contains(':', StringComparison.Ordinal) ? $"[{i.Address}]" : i.Address)}:{i.Port}/" },
                        StringComparer.Ordinal),
                };
            }
            return id;
        }

        var previous = _current;
        _current = new Snapshot(routes, [.. clusters.Values], new CancellationTokenSource());
        previous.Changed.Cancel();
        LogApplied(logger, routes.Count, clusters.Count);
    }

    private RouteConfig Route(string service, string routeId, string clusterId, RouteDeclaration route, string path, int? headerVersion, string? versionPrefix)
    {
        var metadata = new Dictionary<string, string> { [ServiceMetadata] = service };
        if (route.Retries is { } retries)
        {
            metadata[RetryMiddleware.RetriesMetadata] = retries.ToString(CultureInfo.InvariantCulture);
        }
        return new RouteConfig
        {
            RouteId = routeId,
            ClusterId = clusterId,
            // Version-header routes first, so they win over the same path without a header.
            Order = headerVersion is null ? 0 : -1,
            Match = new RouteMatch
            {
                Path = path,
                Headers = headerVersion is { } v
                    ? [new RouteHeader { Name = ApiVersionHeader, Values = [v.ToString(CultureInfo.InvariantCulture)], Mode = HeaderMatchMode.ExactHeader }]
                    : null,
            },
            AuthorizationPolicy = route.Auth switch
            {
                "anonymous" => "anonymous",
                null or "authenticated" => Fundament.Security.Policies.Authenticated,
                var role => role,
            },
            Timeout = route.Timeout ?? options.Value.DefaultTimeout,
            RateLimiterPolicy = route.RateLimit,
            CorsPolicy = route.Cors,
            MaxRequestBodySize = route.MaxBodySize,
            Transforms = route.Transforms(versionPrefix),
            Metadata = metadata,
        };
    }

    /// <summary>The major version of an instance's version tag: <c>2</c>, <c>v2</c> and <c>2.3.1</c> are all 2.</summary>
    internal static int? ApiVersion(string? version)
    {
        if (string.IsNullOrEmpty(version))
        {
            return null;
        }
        var span = version.AsSpan().TrimStart('v').TrimStart('V');
        var end = span.IndexOfAnyExceptInRange('0', '9');
        var digits = end < 0 ? span : span[..end];
        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var major) ? major : null;
    }

    private List<RouteDeclaration> ParseRoutes(string service, string json)
    {
        var routes = new List<RouteDeclaration>();
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                return routes;
            }
            foreach (var element in document.RootElement.EnumerateArray())
            {
                if (RouteDeclaration.Parse(element, options.Value, out var problem) is { } route)
                {
                    routes.Add(route);
                }
                else
                {
                    LogInvalidRoute(logger, service, problem ?? "invalid");
                }
            }
        }
        catch (JsonException)
        {
        }
        return routes;
    }

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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ignoring a gateway route of {Service}: {Problem}")]
    private static partial void LogInvalidRoute(ILogger logger, string service, string problem);

    [LoggerMessage(Level = LogLevel.Error, Message = "Refreshing gateway routes from the registry failed")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
