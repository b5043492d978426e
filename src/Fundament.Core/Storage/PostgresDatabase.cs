using System.Data.Common;
using Npgsql;

namespace Fundament.Core.Storage;

internal sealed class PostgresDatabase(NpgsqlDataSource dataSource) : IDatabase, IAsyncDisposable
{
    public SqlDialect Dialect => SqlDialect.Postgres;

    public NpgsqlDataSource DataSource => dataSource;

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        UnitOfWork.Current is { } unit ? unit.Connection : await dataSource.OpenConnectionAsync(cancellationToken);

    public async Task<T> InTransactionAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        if (UnitOfWork.Current is { } unit)
        {
            return await unit.NestedAsync(work);
        }
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var result = await work(connection, transaction);
        await transaction.CommitAsync(cancellationToken);
        return result;
    }

    public async Task<T> InUnitOfWorkAsync<T>(Func<Task<T>> work, CancellationToken cancellationToken)
    {
        if (UnitOfWork.Current is not null)
        {
            return await work();
        }
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        return await UnitOfWork.RunAsync(connection, transaction, work);
    }

    public async Task PingAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT 1");
        await command.ExecuteScalarAsync(cancellationToken);
    }

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();
}
