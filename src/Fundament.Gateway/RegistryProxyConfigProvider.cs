using System.Globalization;
using System.Net;
using System.Text.Json;
using Fundament.Core.Egress;
using Fundament.Gateway.Policies;
using Fundament.Registry.Routes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.LoadBalancing;

namespace Fundament.Gateway;

/// <summary>
/// Builds YARP routes and clusters from the registry and follows it with a blocking watch, so a
/// route appears or disappears within a second of the registry change; it rebuilds too when a
/// gateway policy changes. YARP swaps configurations without dropping requests in flight. Only
/// passing instances become destinations; a service whose instances declare no route is not
/// exposed. The registry refuses routes outside a service's claims at registration; the same
/// check runs here again, so a claim revoked later cannot leave its routes behind.
/// </summary>
internal sealed partial class RegistryProxyConfigProvider(
    IRoutingTableSource registry,
    GatewayPolicyCatalog policies,
    IEgressResolver resolver,
    IOptions<GatewayOptions> options,
    ILogger<RegistryProxyConfigProvider> logger) : BackgroundService, IProxyConfigProvider
{
    public const string ServiceMetadata = "fundament.service";
    public const string ForwardAuthorizationMetadata = "fundament.forwardAuthorization";
    public const string ApiVersionHeader = "api-version";

    private static readonly Dictionary<string, string> YarpBalancing = new(StringComparer.Ordinal)
    {
        ["powerOfTwo"] = LoadBalancingPolicies.PowerOfTwoChoices,
        ["roundRobin"] = LoadBalancingPolicies.RoundRobin,
        ["leastRequests"] = LoadBalancingPolicies.LeastRequests,
    };

    private readonly Lock _applying = new();
    private volatile HashSet<(IPAddress, int)> _platformEndpoints = [];
    private volatile Snapshot _current = new([], [], new CancellationTokenSource());
    private RoutingTable? _table;

    public IProxyConfig GetConfig() => _current;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(FollowRegistryAsync(stoppingToken), FollowPoliciesAsync(stoppingToken));

    private async Task FollowPoliciesAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await policies.Changed.NextAsync().WaitAsync(stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (!stoppingToken.IsCancellationRequested && _table is { } table)
            {
                Apply(table);
            }
        }
    }

    private async Task FollowRegistryAsync(CancellationToken stoppingToken)
    {
        long? index = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var table = await registry.GetAsync(index, TimeSpan.FromMinutes(5), stoppingToken);
                if (table.Index != index)
                {
                    Apply(table);
                    index = table.Index;
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

    internal void Apply(RoutingTable table)
    {
        lock (_applying)
        {
            _table = table;
            Build(table);
        }
        _ = ResolvePlatformEndpointsAsync(table);
    }

    /// <summary>Whether an address the gateway is about to dial is the API of a registered Fundament node.</summary>
    public bool IsPlatformEndpoint(IPAddress address, int port) => _platformEndpoints.Contains((address, port));

    /// <summary>The addresses of every registered fundament instance, names resolved, for the connect-time check.</summary>
    private async Task ResolvePlatformEndpointsAsync(RoutingTable table)
    {
        var endpoints = new HashSet<(IPAddress, int)>();
        foreach (var instance in table.Instances.Where(i => i.Service == RoutePaths.FundamentService))
        {
            try
            {
                var addresses = IPAddress.TryParse(instance.Address, out var literal) ? [literal] : await resolver.ResolveAsync(instance.Address, CancellationToken.None);
                foreach (var address in addresses)
                {
                    endpoints.Add((IpAddresses.Normalize(address), instance.Port));
                }
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ArgumentException)
            {
                LogRefreshFailed(logger, ex);
            }
        }
        _platformEndpoints = endpoints;
    }

    private void Build(RoutingTable table)
    {
        var o = options.Value;
        var catalog = policies.Current;
        var routes = new List<RouteConfig>();
        var clusters = new Dictionary<string, ClusterConfig>(StringComparer.Ordinal);
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        // Fundament's own API endpoints: no other service's destination may point at one.
        var platform = table.Instances.Where(i => i.Service == RoutePaths.FundamentService).Select(Endpoint).ToHashSet(StringComparer.Ordinal);
        foreach (var service in table.Instances.GroupBy(i => i.Service, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var byInstance = service.ToDictionary(i => i.InstanceId, i => ParseRoutes(service.Key, i.RoutesJson), StringComparer.Ordinal);
            var declared = byInstance.Values.SelectMany(r => r)
                .GroupBy(r => r.Path, StringComparer.OrdinalIgnoreCase).Select(g => g.First())
                .Where(r => Servable(service.Key, r, table.Ownership, catalog))
                .ToList();
            if (declared.Count == 0)
            {
                continue;
            }
            var passing = service.Where(i => i.Status == "passing").ToList();
            if (service.Key != RoutePaths.FundamentService && passing.FirstOrDefault(i => platform.Contains(Endpoint(i))) is { } impostor)
            {
                LogPlatformEndpoint(logger, service.Key, impostor.InstanceId);
                passing = passing.Where(i => !platform.Contains(Endpoint(i))).ToList();
            }
            var n = 0;
            var allPassing = passing;
            // What each registered instance declares, as one signature: instances that declare the same
            // paths share clusters, so a route goes to a subset only when the instances really differ.
            var signatures = service.ToDictionary(i => i.InstanceId,
                i => string.Join('\n', byInstance[i.InstanceId].Select(r => r.Path.ToLowerInvariant()).Order(StringComparer.Ordinal)), StringComparer.Ordinal);
            var allSignatures = signatures.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            foreach (var route in declared)
            {
                if (!taken.Add(route.Path))
                {
                    LogDuplicateRoute(logger, route.Path, service.Key);
                    continue;
                }
                // A route goes only to the instances that declared it (Fundament's media nodes declare
                // /api/v1/media/**, its control nodes /api/**); when every instance did, the service's one cluster.
                bool Declares(RoutableInstance i) => byInstance[i.InstanceId].Any(r => string.Equals(r.Path, route.Path, StringComparison.OrdinalIgnoreCase));
                passing = allPassing.Where(Declares).ToList();
                var declaring = service.Where(Declares).Select(i => signatures[i.InstanceId]).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
                var subset = declaring.SequenceEqual(allSignatures, StringComparer.Ordinal) ? null : string.Join("\n\n", declaring);
                // API versions: when the route's instances carry more than one major version, each gets /v<N>/... and
                // api-version: N routes; requests naming no version go to the newest.
                var versions = passing.Select(i => ApiVersion(i.Version)).OfType<int>().Distinct().Order().ToList();
                if (versions.Count < 2)
                {
                    routes.Add(Route(service.Key, $"svc-{service.Key}-{n++}", Cluster(service.Key, null, passing, YarpBalancing[route.LoadBalancing], subset), route, route.Path, null, null));
                    continue;
                }
                var latest = versions[^1];
                routes.Add(Route(service.Key, $"svc-{service.Key}-{n++}", Cluster(service.Key, latest, passing, YarpBalancing[route.LoadBalancing], subset), route, route.Path, null, null));
                foreach (var version in versions)
                {
                    var cluster = Cluster(service.Key, version, passing, YarpBalancing[route.LoadBalancing], subset);
                    var prefix = "/v" + version.ToString(CultureInfo.InvariantCulture);
                    if (taken.Add(prefix + route.Path))
                    {
                        routes.Add(Route(service.Key, $"svc-{service.Key}-{n++}", cluster, route, prefix + route.Path, null, prefix));
                    }
                    routes.Add(Route(service.Key, $"svc-{service.Key}-{n++}", cluster, route, route.Path, version, null));
                }
            }
        }

        string Cluster(string service, int? version, List<RoutableInstance> passing, string balancing, string? onlyDeclaring)
        {
            var id = "svc-" + service + (version is { } v ? "@v" + v.ToString(CultureInfo.InvariantCulture) : "")
                + (balancing == LoadBalancingPolicies.PowerOfTwoChoices ? "" : "~" + balancing)
                + (onlyDeclaring is null ? "" : "#" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(onlyDeclaring.ToLowerInvariant())))[..8]);
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
        var metadata = new Dictionary<string, string>
        {
            [ServiceMetadata] = service,
            [ForwardAuthorizationMetadata] = route.ForwardAuthorization.ToString(),
        };
        if (route.Retries is { } retries)
        {
            metadata[RetryMiddleware.RetriesMetadata] = retries.ToString(CultureInfo.InvariantCulture);
        }
        if (route.RateLimit is { } rateLimit)
        {
            metadata[RateLimiting.PolicyMetadata] = rateLimit;
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
                null or "authenticated" => Fundament.Core.Security.Policies.Authenticated,
                var role => role,
            },
            Timeout = route.Timeout ?? options.Value.DefaultTimeout,
            CorsPolicy = route.Cors,
            MaxRequestBodySize = route.MaxBodySize,
            Transforms = Transforms(route, versionPrefix),
            Metadata = metadata,
        };
    }

    /// <summary>The YARP transforms a route asks for, in order: strip, prefix, then headers.</summary>
    private static List<IReadOnlyDictionary<string, string>> Transforms(RouteDeclaration route, string? versionPrefix)
    {
        var transforms = new List<IReadOnlyDictionary<string, string>>();
        if (versionPrefix is not null)
        {
            transforms.Add(new Dictionary<string, string> { ["PathRemovePrefix"] = versionPrefix });
        }
        if (route.StripPrefix is { Length: > 1 })
        {
            transforms.Add(new Dictionary<string, string> { ["PathRemovePrefix"] = route.StripPrefix });
        }
        if (route.PathPrefix is { Length: > 1 })
        {
            transforms.Add(new Dictionary<string, string> { ["PathPrefix"] = route.PathPrefix });
        }
        foreach (var (name, value) in route.RequestHeaders)
        {
            transforms.Add(value is null
                ? new Dictionary<string, string> { ["RequestHeaderRemove"] = name }
                : new Dictionary<string, string> { ["RequestHeader"] = name, ["Set"] = value });
        }
        foreach (var (name, value) in route.ResponseHeaders)
        {
            transforms.Add(value is null
                ? new Dictionary<string, string> { ["ResponseHeaderRemove"] = name, ["When"] = "Always" }
                : new Dictionary<string, string> { ["ResponseHeader"] = name, ["Set"] = value, ["When"] = "Always" });
        }
        return transforms;
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

    private IReadOnlyList<RouteDeclaration> ParseRoutes(string service, string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var problems = new List<(string Field, string Message)>();
            var routes = RouteDeclaration.ParseAll(document.RootElement, problems, strict: false);
            foreach (var (field, message) in problems)
            {
                LogInvalidRoute(logger, service, $"{field}: {message}");
            }
            return routes;
        }
        catch (JsonException)
        {
            return [];
        }
    }

    /// <summary>Whether a stored route may still be served: inside its service's claims, naming policies that exist.</summary>
    private bool Servable(string service, RouteDeclaration route, RouteOwnership ownership, PolicySnapshot catalog)
    {
        if (ownership.Check(service, route.Path) is { Allowed: false } verdict)
        {
            LogOutsideClaims(logger, service, verdict.Reason!);
            return false;
        }
        if ((route.RateLimit is { } limit && !catalog.RateLimits.ContainsKey(limit)) || (route.Cors is { } cors && !catalog.Cors.ContainsKey(cors)))
        {
            // Perhaps created on another node a moment ago: look now rather than at the next poll;
            // if it turns up, the catalog's change signal rebuilds the routes with it.
            LogInvalidRoute(logger, service, $"{route.Path} names a policy this node does not know ({route.RateLimit ?? route.Cors})");
            _ = ReloadPoliciesAsync();
            return false;
        }
        return true;
    }

    private async Task ReloadPoliciesAsync()
    {
        try
        {
            await policies.ReloadAsync(CancellationToken.None);
        }
        catch (Exception ex)
        {
            LogRefreshFailed(logger, ex);
        }
    }

    private static string Endpoint(RoutableInstance instance) =>
        (IPAddress.TryParse(instance.Address, out var ip) ? IpAddresses.Normalize(ip).ToString() : instance.Address.ToLowerInvariant())
        + ":" + instance.Port.ToString(CultureInfo.InvariantCulture);

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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Not serving a route of {Service}: {Reason}")]
    private static partial void LogOutsideClaims(ILogger logger, string service, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Service {Service} has an instance ({InstanceId}) at the address of a Fundament node's API; it gets no traffic")]
    private static partial void LogPlatformEndpoint(ILogger logger, string service, string instanceId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ignoring a gateway route of {Service}: {Problem}")]
    private static partial void LogInvalidRoute(ILogger logger, string service, string problem);

    [LoggerMessage(Level = LogLevel.Error, Message = "Refreshing gateway routes from the registry failed")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
