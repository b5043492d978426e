using System.Data.Common;
using Npgsql;

namespace Fundament.Storage;

internal sealed class PostgresDatabase(NpgsqlDataSource dataSource) : IDatabase, IAsyncDisposable
{
    public SqlDialect Dialect => SqlDialect.Postgres;

    public NpgsqlDataSource DataSource => dataSource;

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        await dataSource.OpenConnectionAsync(cancellationToken);

    public async Task<T> InTransactionAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var result = await work(connection, transaction);
        await transaction.CommitAsync(cancellationToken);
        return result;
    }

    public async Task PingAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT 1");
        await command.ExecuteScalarAsync(cancellationToken);
    }

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();
}
