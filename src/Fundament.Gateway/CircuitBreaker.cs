using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Fundament.Gateway;

/// <summary>
/// The gateway's circuit breaker, YARP passive health policy <c>fundament</c>: a destination is
/// ejected for <see cref="GatewayOptions.ReactivationPeriod"/> after
/// <see cref="GatewayOptions.FailureThreshold"/> consecutive failures (not reached, dropped, timed
/// out, or answered 502/503/504), or when YARP's built-in transport-failure-rate policy finds its
/// failure rate too high. Ejections are logged and counted; the registry's active checks decide
/// whether the instance gets traffic again after the period.
/// </summary>
internal sealed partial class ConsecutiveFailuresPolicy : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "fundament";

    private readonly IServiceProvider _services;
    private readonly IDestinationHealthUpdater _health;
    private readonly GatewayOptions _options;
    private readonly ILogger _logger;
    private readonly Counter<long> _ejections;
    private readonly ConditionalWeakTable<DestinationState, StrongBox<int>> _consecutive = [];
    private IPassiveHealthCheckPolicy? _rate;

    public ConsecutiveFailuresPolicy(IServiceProvider services, IDestinationHealthUpdater health, IOptions<GatewayOptions> options, ILogger<ConsecutiveFailuresPolicy> logger, IMeterFactory meters)
    {
        _services = services;
        _health = health;
        _options = options.Value;
        _logger = logger;
        _ejections = meters.Create("Fundament.Gateway").CreateCounter<long>("fundament.gateway.ejections", "{ejection}", "Destinations taken out of rotation by passive health (circuit opened).");
    }

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        var before = destination.Health.Passive;
        _rate ??= _services.GetServices<IPassiveHealthCheckPolicy>().First(p => p.Name == HealthCheckConstants.PassivePolicy.TransportFailureRate);
        _rate.RequestProxied(context, cluster, destination);

        var count = _consecutive.GetValue(destination, _ => new StrongBox<int>());
        if (!Failed(context))
        {
            Volatile.Write(ref count.Value, 0);
        }
        else if (Interlocked.Increment(ref count.Value) >= _options.FailureThreshold && destination.Health.Passive != DestinationHealth.Unhealthy)
        {
            Volatile.Write(ref count.Value, 0);
            _health.SetPassive(cluster, destination, DestinationHealth.Unhealthy, _options.ReactivationPeriod);
        }

        if (before != DestinationHealth.Unhealthy && destination.Health.Passive == DestinationHealth.Unhealthy)
        {
            LogEjected(_logger, destination.DestinationId, cluster.ClusterId, _options.ReactivationPeriod);
            _ejections.Add(1, new KeyValuePair<string, object?>("cluster", cluster.ClusterId));
        }
    }

    private static bool Failed(HttpContext context)
    {
        var error = context.Features.Get<IForwarderErrorFeature>()?.Error;
        if (error is ForwarderError.Request or ForwarderError.ResponseBodyDestination or ForwarderError.RequestBodyDestination || TimeoutMiddleware.TimedOut(context))
        {
            return true;
        }
        return error is null or ForwarderError.None && context.Response.StatusCode is 502 or 503 or 504;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Destination {Destination} of {Cluster} ejected for {Period} (circuit open)")]
    private static partial void LogEjected(ILogger logger, string destination, string cluster, TimeSpan period);
}
