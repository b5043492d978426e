using System.Data.Common;
using Dapper;

namespace Fundament.Core.Storage;

/// <summary>
/// Applies every module's pending migrations at start-up, each in its own transaction. Replicas
/// starting together on PostgreSQL serialize on an advisory lock; on SQLite the write lock does it.
/// A database migrated by a newer binary is refused rather than run against an unknown schema.
/// </summary>
internal sealed partial class MigrationRunner(
    IDatabase database,
    IEnumerable<IMigrationSource> sources,
    TimeProvider time,
    ILogger<MigrationRunner> logger)
{
    // Arbitrary constant naming "fundament schema migrations" for pg_advisory_lock.
    private const long AdvisoryLockKey = 0x46554E444D4947;

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        if (database.Dialect == SqlDialect.Postgres)
        {
            await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_lock(@key)", new { key = AdvisoryLockKey }, cancellationToken: cancellationToken));
        }
        try
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                CREATE TABLE IF NOT EXISTS fundament_schema_migrations (
                    module TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    applied_at BIGINT NOT NULL,
                    PRIMARY KEY (module, version))
                """, cancellationToken: cancellationToken));

            var applied = 0;
            foreach (var source in sources.OrderBy(s => s.Module, StringComparer.Ordinal))
            {
                applied += await ApplyModuleAsync(connection, source, cancellationToken);
            }
            return applied;
        }
        finally
        {
            if (database.Dialect == SqlDialect.Postgres && connection.State == System.Data.ConnectionState.Open)
            {
                await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_unlock(@key)", new { key = AdvisoryLockKey }, cancellationToken: CancellationToken.None));
            }
        }
    }

    private async Task<int> ApplyModuleAsync(DbConnection connection, IMigrationSource source, CancellationToken cancellationToken)
    {
        var migrations = source.Migrations.OrderBy(m => m.Version).ToList();
        for (var i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1)
            {
                throw new InvalidOperationException($"Module '{source.Module}' has migration versions that are not 1..N in order.");
            }
        }

        var current = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT MAX(version) FROM fundament_schema_migrations WHERE module = @module",
            new { module = source.Module }, cancellationToken: cancellationToken)) ?? 0;
        if (current > migrations.Count)
        {
            throw new Hosting.StartupException(
                $"The database schema of module '{source.Module}' is at version {current}, newer than this binary knows ({migrations.Count}): " +
                $"a newer Fundament has migrated it. Run that version (this one is {Hosting.NodeIdentity.BuildVersion}) or restore a backup taken before the upgrade.");
        }

        var applied = 0;
        foreach (var migration in migrations.Where(m => m.Version > current))
        {
            await using var transaction = connection is Microsoft.Data.Sqlite.SqliteConnection sqlite
                ? sqlite.BeginTransaction(deferred: false)
                : await connection.BeginTransactionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(database.Dialect.Expand(migration.Sql), transaction: transaction, cancellationToken: cancellationToken));
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO fundament_schema_migrations (module, version, name, applied_at) VALUES (@module, @version, @name, @at)",
                new { module = source.Module, version = migration.Version, name = migration.Name, at = time.GetUtcNow().ToUnixTimeMilliseconds() },
                transaction, cancellationToken: cancellationToken));
            await transaction.CommitAsync(cancellationToken);
            LogApplied(logger, source.Module, migration.Version, migration.Name);
            applied++;
        }
        return applied;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied migration {Module} v{Version} ({Name})")]
    private static partial void LogApplied(ILogger logger, string module, int version, string name);
}
