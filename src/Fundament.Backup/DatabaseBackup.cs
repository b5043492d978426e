using System.Data;
using System.Data.Common;
using System.Diagnostics;
using Dapper;
using Fundament.Core.Backup;
using Fundament.Core.Storage;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Fundament.Backup;

/// <summary>What a database snapshot holds, read from the snapshot itself.</summary>
internal sealed record SnapshotContents(IReadOnlyDictionary<string, int> Migrations, IReadOnlyDictionary<string, long> Tables, IReadOnlyList<BackupBlobReference> Blobs);

/// <summary>
/// The database side of a backup. SQLite: the online backup API copies a consistent snapshot of the
/// live file while the server keeps writing. PostgreSQL: <c>pg_dump</c> of a snapshot exported by a
/// repeatable-read transaction, which also lists the tables' rows and the blobs, so all of it agrees.
/// </summary>
internal abstract class DatabaseBackup
{
    public abstract string Provider { get; }

    /// <summary>The file name of the database in a backup.</summary>
    public abstract string FileName { get; }

    /// <summary>Writes a consistent snapshot to <paramref name="path"/> and reads from that same snapshot what it holds.</summary>
    public abstract Task<SnapshotContents> SnapshotAsync(string path, IEnumerable<IBackupBlobSource> sources, CancellationToken cancellationToken);

    /// <summary>Throws <see cref="BackupException"/> unless the target database is empty.</summary>
    public abstract Task EnsureEmptyAsync(CancellationToken cancellationToken);

    /// <summary>Loads the snapshot at <paramref name="path"/> into the (empty) target database.</summary>
    public abstract Task RestoreAsync(string path, CancellationToken cancellationToken);

    public abstract SqlDialect Dialect { get; }

    /// <summary>A connection to the target database (after a restore).</summary>
    public abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>Rows per table, as a restored copy holds them.</summary>
    public abstract Task<IReadOnlyDictionary<string, long>> CountAsync(CancellationToken cancellationToken);

    public static DatabaseBackup For(string provider, string connectionString, BackupOptions options) =>
        provider == "postgres" ? new PostgresBackup(connectionString, options) : new SqliteBackup(connectionString);

    protected static async Task<SnapshotContents> ReadContentsAsync(DbConnection connection, DbTransaction? transaction, SqlDialect dialect,
        IReadOnlyList<string> tables, IEnumerable<IBackupBlobSource> sources, CancellationToken cancellationToken)
    {
        var migrations = (await connection.QueryAsync<(string Module, long Version)>(new CommandDefinition(
                "SELECT module, MAX(version) FROM fundament_schema_migrations GROUP BY module", transaction: transaction, cancellationToken: cancellationToken)))
            .ToDictionary(r => r.Module, r => (int)r.Version, StringComparer.Ordinal);
        var counts = await CountAsync(connection, transaction, tables, cancellationToken);
        var blobs = new List<BackupBlobReference>();
        var seen = new HashSet<(string, string)>();
        foreach (var source in sources)
        {
            await foreach (var reference in source.ReferencedAsync(connection, transaction, dialect, cancellationToken))
            {
                if (seen.Add((reference.Store, reference.Key)))
                {
                    blobs.Add(reference);
                }
            }
        }
        return new SnapshotContents(migrations, counts, blobs);
    }

    protected static async Task<IReadOnlyDictionary<string, long>> CountAsync(DbConnection connection, DbTransaction? transaction, IReadOnlyList<string> tables, CancellationToken cancellationToken)
    {
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var table in tables)
        {
            // Table names come from the catalog, and are quoted all the same.
            counts[table] = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                $"SELECT COUNT(*) FROM \"{table.Replace("\"", "\"\"", StringComparison.Ordinal)}\"", transaction: transaction, cancellationToken: cancellationToken));
        }
        return counts;
    }
}

internal sealed class SqliteBackup(string connectionString) : DatabaseBackup
{
    private const string TablesSql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";

    public override string Provider => "sqlite";

    public override string FileName => "fundament.db";

    public override SqlDialect Dialect => SqlDialect.Sqlite;

    public override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString());
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    /// <summary>The database file the connection string names.</summary>
    public string DatabasePath => Path.GetFullPath(new SqliteConnectionStringBuilder(connectionString).DataSource);

    public override async Task<SnapshotContents> SnapshotAsync(string path, IEnumerable<IBackupBlobSource> sources, CancellationToken cancellationToken)
    {
        if (!File.Exists(DatabasePath))
        {
            throw new BackupException($"there is no database at {DatabasePath}: check --data-dir (or Fundament:DataDir).");
        }
        await using (var source = new SqliteConnection(new SqliteConnectionStringBuilder(connectionString) { Mode = SqliteOpenMode.ReadWrite, Pooling = false }.ToString()))
        await using (var target = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString()))
        {
            await source.OpenAsync(cancellationToken);
            await target.OpenAsync(cancellationToken);
            // One step under a read transaction: a consistent snapshot, while the server goes on writing (WAL).
            source.BackupDatabase(target);
            // A self-contained file: no -wal beside it.
            await target.ExecuteAsync("PRAGMA journal_mode = DELETE");
        }
        await using var copy = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString());
        await copy.OpenAsync(cancellationToken);
        var tables = (await copy.QueryAsync<string>(TablesSql)).ToList();
        return await ReadContentsAsync(copy, null, SqlDialect.Sqlite, tables, sources, cancellationToken);
    }

    public override Task EnsureEmptyAsync(CancellationToken cancellationToken)
    {
        if (File.Exists(DatabasePath) && new FileInfo(DatabasePath).Length > 0)
        {
            throw new BackupException($"the database {DatabasePath} exists: restore only into an empty data folder.");
        }
        return Task.CompletedTask;
    }

    public override Task RestoreAsync(string path, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(DatabasePath)!);
        File.Move(path, DatabasePath, overwrite: false);
        return Task.CompletedTask;
    }

    public override async Task<IReadOnlyDictionary<string, long>> CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString());
        await connection.OpenAsync(cancellationToken);
        return await CountAsync(connection, null, (await connection.QueryAsync<string>(TablesSql)).ToList(), cancellationToken);
    }
}

internal sealed class PostgresBackup(string connectionString, BackupOptions options) : DatabaseBackup
{
    private const string TablesSql = """
        SELECT table_name FROM information_schema.tables
        WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name
        """;

    public override string Provider => "postgres";

    public override string FileName => "fundament.pgdump";

    public override SqlDialect Dialect => SqlDialect.Postgres;

    public string DatabaseName => new NpgsqlConnectionStringBuilder(connectionString).Database ?? "";

    public override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    public override async Task<SnapshotContents> SnapshotAsync(string path, IEnumerable<IBackupBlobSource> sources, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
        var snapshot = await connection.ExecuteScalarAsync<string>(new CommandDefinition("SELECT pg_export_snapshot()", transaction: transaction, cancellationToken: cancellationToken));
        // The same snapshot for the contents (first, so the objects they name are copied as early as possible) and for
        // pg_dump, which reads exactly what this transaction sees for as long as it stays open.
        var tables = (await connection.QueryAsync<string>(new CommandDefinition(TablesSql, transaction: transaction, cancellationToken: cancellationToken))).ToList();
        var contents = await ReadContentsAsync(connection, transaction, SqlDialect.Postgres, tables, sources, cancellationToken);
        await RunAsync(options.PgDump, ["--format=custom", "--no-password", $"--snapshot={snapshot}", $"--file={path}"], null, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return contents;
    }

    public override async Task EnsureEmptyAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        var tables = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')", cancellationToken: cancellationToken));
        if (tables > 0)
        {
            throw new BackupException($"the database '{connection.Database}' has {tables} tables: restore only into an empty database.");
        }
    }

    public override Task RestoreAsync(string path, CancellationToken cancellationToken) =>
        RunAsync(options.PgRestore, ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--no-password", $"--dbname={new NpgsqlConnectionStringBuilder(connectionString).Database}", path], null, cancellationToken);

    public override async Task<IReadOnlyDictionary<string, long>> CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        return await CountAsync(connection, null, (await connection.QueryAsync<string>(TablesSql)).ToList(), cancellationToken);
    }

    /// <summary>A new, empty database on the same server, for verifying in a scratch copy; dropped by <see cref="DropAsync"/>.</summary>
    public async Task<PostgresBackup> CreateScratchAsync(CancellationToken cancellationToken)
    {
        var name = $"fundament_verify_{Guid.NewGuid():N}"[..32];
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        try
        {
            await connection.ExecuteAsync(new CommandDefinition($"CREATE DATABASE {name} TEMPLATE template0", cancellationToken: cancellationToken));
        }
        catch (PostgresException ex)
        {
            throw new BackupException($"verifying a PostgreSQL backup restores it into a scratch database, and this role cannot create one ({ex.MessageText}).", ex);
        }
        return new PostgresBackup(new NpgsqlConnectionStringBuilder(connectionString) { Database = name, Pooling = false }.ToString(), options);
    }

    public async Task DropAsync(string adminConnectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        await using var connection = new NpgsqlConnection(adminConnectionString);
        await connection.OpenAsync();
        await connection.ExecuteAsync($"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    }

    public string ConnectionString => connectionString;

    /// <summary>Runs a PostgreSQL client tool with the connection in its environment (the password never on a command line).</summary>
    private async Task RunAsync(string tool, IReadOnlyList<string> arguments, string? database, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var info = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        info.Environment["PGHOST"] = builder.Host;
        info.Environment["PGPORT"] = builder.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["PGDATABASE"] = database ?? builder.Database;
        if (builder.Username is { } user)
        {
            info.Environment["PGUSER"] = user;
        }
        if (builder.Password is { } password)
        {
            info.Environment["PGPASSWORD"] = password;
        }
        info.Environment["PGSSLMODE"] = builder.SslMode switch
        {
            SslMode.Disable => "disable",
            SslMode.Allow => "allow",
            SslMode.Require => "require",
            SslMode.VerifyCA => "verify-ca",
            SslMode.VerifyFull => "verify-full",
            _ => "prefer",
        };
        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new BackupException($"PostgreSQL backups need '{tool}' (the postgresql-client package, at least the server's version); set Fundament:Backup:{(tool == options.PgDump ? "PgDump" : "PgRestore")} to its path.", ex);
        }
        using (process)
        {
            var error = process.StandardError.ReadToEndAsync(cancellationToken);
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            try
            {
                await process.WaitForExitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            await output;
            if (process.ExitCode != 0)
            {
                var lines = (await error).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                throw new BackupException($"{Path.GetFileName(tool)} failed (exit code {process.ExitCode}): {string.Join(" / ", lines.TakeLast(3))}");
            }
        }
    }
}
