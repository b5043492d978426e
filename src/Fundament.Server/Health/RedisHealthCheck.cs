using Fundament.Core.Redis;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Fundament.Server.Health;

/// <summary>
/// Redis answers a PING. Registered with failure status Degraded: the gateway fails open without
/// Redis, so losing it shows in <c>/health/ready</c> and raises the backend-down alert without
/// taking the replica out of its load balancer (Degraded still answers 200).
/// </summary>
internal sealed class RedisHealthCheck(RedisConnection redis) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var latency = await redis.PingAsync();
            return HealthCheckResult.Healthy($"redis answered in {latency.TotalMilliseconds:0.0} ms");
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, "redis is unreachable", ex);
        }
    }
}
