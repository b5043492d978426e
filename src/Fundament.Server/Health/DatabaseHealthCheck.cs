using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Fundament.Server.Health;

/// <summary>Ready only while the shared store answers a round trip.</summary>
internal sealed class DatabaseHealthCheck(IDatabase database) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await database.PingAsync(cancellationToken);
            return HealthCheckResult.Healthy(database.Dialect.Name);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The exception goes to the health log; the body only names the backend.
            return new HealthCheckResult(context.Registration.FailureStatus, $"{database.Dialect.Name} is unreachable", ex);
        }
    }
}
