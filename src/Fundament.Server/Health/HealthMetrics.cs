using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Fundament.Server.Health;

/// <summary>
/// <c>fundament_health_up{check}</c>: 1 while a readiness check (database, schema, redis,
/// rabbitmq) is healthy, 0 while it is degraded or unhealthy, from a pass every 15 s. The gauge is
/// what Prometheus alerts on (deploy/prometheus/rules.yml); a gauge callback cannot run the checks
/// itself, since they are asynchronous and may take seconds.
/// </summary>
internal sealed partial class HealthMetrics : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);

    private readonly HealthCheckService _health;
    private readonly TimeProvider _time;
    private readonly ILogger<HealthMetrics> _logger;
    private volatile IReadOnlyDictionary<string, HealthStatus> _last = new Dictionary<string, HealthStatus>();

    public HealthMetrics(HealthCheckService health, TimeProvider time, IMeterFactory meters, ILogger<HealthMetrics> logger)
    {
        _health = health;
        _time = time;
        _logger = logger;
        meters.Create("Fundament.Health").CreateObservableGauge("fundament.health.up",
            () => _last.Select(c => new Measurement<int>(c.Value == HealthStatus.Healthy ? 1 : 0, new KeyValuePair<string, object?>("check", c.Key))),
            "{check}", "1 while the readiness check is healthy, 0 while it is degraded or unhealthy.");
    }

    public async Task PassAsync(CancellationToken cancellationToken)
    {
        var report = await _health.CheckHealthAsync(r => r.Tags.Contains(HealthEndpoints.ReadyTag), cancellationToken);
        _last = report.Entries.ToDictionary(e => e.Key, e => e.Value.Status, StringComparer.Ordinal);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PassAsync(stoppingToken);
                await Task.Delay(Interval, _time, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogFailed(_logger, ex);
                await Task.Delay(Interval, _time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Running the readiness checks for fundament_health_up failed; the next pass tries again")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
