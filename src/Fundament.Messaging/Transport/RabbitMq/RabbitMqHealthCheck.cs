using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Fundament.Messaging.Transport.RabbitMq;

/// <summary>
/// The node's connection to RabbitMQ is open (or opens now). Registered with failure status
/// Degraded, tagged <c>ready</c>: without the broker publishes answer 503 but pulls still serve
/// the database's retries and replays, so losing it shows in <c>/health/ready</c> and raises the
/// backend-down alert without taking the replica out of its load balancer.
/// </summary>
internal sealed class RabbitMqHealthCheck(RabbitMqTransport transport) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await transport.ConnectedAsync(cancellationToken);
            return HealthCheckResult.Healthy($"connected as node {transport.Node}");
        }
        catch (TransportException ex)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, "rabbitmq is unreachable", ex.InnerException ?? ex);
        }
    }
}
