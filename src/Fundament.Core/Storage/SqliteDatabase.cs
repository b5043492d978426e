using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Fundament.Core.Storage;

internal sealed class SqliteDatabase : IDatabase
{
    private readonly string _connectionString;

    /// <summary>
    /// SQLite has one writer; this process is the only one writing (the embedded default). Write
    /// transactions queue here, in order, instead of colliding in the database and waiting out
    /// SQLite's busy handler, whose sleeps (up to 100 ms) dominated latency under concurrency.
    /// </summary>
    private readonly SemaphoreSlim _writer = new(1, 1);

    public SqliteDatabase(string connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(connectionString)
        {
            ForeignKeys = true,
            Pooling = true,
            Cache = SqliteCacheMode.Private,
        };
        if (builder.DefaultTimeout < 30)
        {
            builder.DefaultTimeout = 30;
        }
        _connectionString = builder.ToString();
        var dataSource = builder.DataSource;
        if (!string.IsNullOrEmpty(dataSource) && dataSource != ":memory:")
        {
            var folder = Path.GetDirectoryName(Path.GetFullPath(dataSource));
            if (!string.IsNullOrEmpty(folder))
            {
                Directory.CreateDirectory(folder);
            }
        }
        // WAL lets readers run beside the single writer; the mode is stored in the file.
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL;";
        command.ExecuteNonQuery();
    }

    public SqlDialect Dialect => SqlDialect.Sqlite;

    public string ConnectionString => _connectionString;

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (UnitOfWork.Current is { } unit)
        {
            return unit.Connection;
        }
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            // SQLite's own busy handler (short, growing sleeps) for the writes outside transactions
            // that still meet a writer, rather than the provider's fixed 150 ms retry.
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA busy_timeout = 30000;";
            await command.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public async Task<T> InTransactionAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        if (UnitOfWork.Current is { } unit)
        {
            return await unit.NestedAsync(work);
        }
        await _writer.WaitAsync(cancellationToken);
        try
        {
            await using var connection = (SqliteConnection)await OpenAsync(cancellationToken);
            // deferred: false issues BEGIN IMMEDIATE.
            await using var transaction = connection.BeginTransaction(deferred: false);
            var result = await work(connection, transaction);
            await transaction.CommitAsync(cancellationToken);
            return result;
        }
        finally
        {
            _writer.Release();
        }
    }

    public async Task<T> InUnitOfWorkAsync<T>(Func<Task<T>> work, CancellationToken cancellationToken)
    {
        if (UnitOfWork.Current is not null)
        {
            return await work();
        }
        await _writer.WaitAsync(cancellationToken);
        try
        {
            await using var connection = (SqliteConnection)await OpenAsync(cancellationToken);
            await using var transaction = connection.BeginTransaction(deferred: false);
            return await UnitOfWork.RunAsync(connection, transaction, work);
        }
        finally
        {
            _writer.Release();
        }
    }

    public async Task PingAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT 1";
        await command.ExecuteScalarAsync(cancellationToken);
    }
}
