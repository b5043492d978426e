using Dapper;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Fundament.Core.Storage;

/// <summary>
/// <c>/health/ready</c> check <c>schema</c>: unhealthy when another node, on a newer binary, has
/// migrated a module past what this binary knows. Start-up already refuses such a database; this
/// catches a node that was running before the upgrade, so a load balancer stops sending it
/// requests its code may answer wrongly, and says which module and which versions.
/// </summary>
internal sealed class SchemaVersionHealthCheck(IDatabase database, IEnumerable<IMigrationSource> sources) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var applied = (await connection.QueryAsync<(string Module, long Version)>(new CommandDefinition(
            "SELECT module, MAX(version) FROM fundament_schema_migrations GROUP BY module", cancellationToken: cancellationToken)))
            .ToDictionary(r => r.Module, r => r.Version, StringComparer.Ordinal);
        var newer = sources
            .Select(s => (s.Module, Known: s.Migrations.Count, Applied: applied.GetValueOrDefault(s.Module)))
            .Where(m => m.Applied > m.Known)
            .Select(m => $"module '{m.Module}' is at schema version {m.Applied}, this binary knows {m.Known}")
            .ToList();
        return newer.Count == 0
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy(
                $"This node's binary ({Hosting.NodeIdentity.BuildVersion}) is older than the database: {string.Join("; ", newer)}. Upgrade or replace this node.");
    }
}
