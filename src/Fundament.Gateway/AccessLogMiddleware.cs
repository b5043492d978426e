using System.Diagnostics;
using System.Diagnostics.Metrics;
using Yarp.ReverseProxy.Model;

namespace Fundament.Gateway;

/// <summary>
/// One structured line per gateway request: route, service, instance, status, duration, bytes,
/// user and trace id. It never reads headers, so no Authorization, cookie or API key can reach it.
/// Also records <c>fundament_gateway_request_duration_seconds{route,service,status}</c>.
/// </summary>
internal sealed partial class AccessLogMiddleware
{
    private readonly RequestDelegate _next;
    private readonly ILogger _logger;
    private readonly Histogram<double> _duration;

    public AccessLogMiddleware(RequestDelegate next, ILoggerFactory loggers, IMeterFactory meters)
    {
        _next = next;
        _logger = loggers.CreateLogger("Fundament.Gateway.Access");
        _duration = meters.Create("Fundament.Gateway").CreateHistogram<double>("fundament.gateway.request.duration", "s", "Gateway requests by route, service and status.",
            advice: new System.Diagnostics.Metrics.InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
    }

    public async Task InvokeAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await _next(context);
        }
        finally
        {
            var elapsed = Stopwatch.GetElapsedTime(started);
            var proxy = context.Features.Get<IReverseProxyFeature>();
            var route = proxy?.Route.Config.RouteId ?? "(none)";
            var service = proxy?.Route.Config.Metadata?.GetValueOrDefault(RegistryProxyConfigProvider.ServiceMetadata) ?? "(none)";
            var instance = proxy?.ProxiedDestination?.DestinationId ?? "(none)";
            var status = context.Response.StatusCode;
            _duration.Record(elapsed.TotalSeconds, new TagList { { "route", route }, { "service", service }, { "status", status } });
            if (_logger.IsEnabled(LogLevel.Information))
            {
                LogAccess(_logger, context.Request.Method, context.Request.Path.Value ?? "", route, service, instance, status, Math.Round(elapsed.TotalMilliseconds, 2),
                    context.Response.ContentLength ?? -1, context.User.ActorId() ?? "-", Activity.Current?.TraceId.ToString() ?? context.TraceIdentifier);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Method} {Path} route={Route} service={Service} instance={Instance} status={Status} durationMs={DurationMs} bytes={Bytes} user={User} trace={TraceId}")]
    private static partial void LogAccess(ILogger logger, string method, string path, string route, string service, string instance, int status, double durationMs, long bytes, string user, string traceId);
}
