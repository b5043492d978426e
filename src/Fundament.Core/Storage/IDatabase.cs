using System.Data.Common;

namespace Fundament.Storage;

/// <summary>
/// The shared relational store. Every module reads and writes its own tables through this, with
/// Dapper and portable SQL (see docs/adr/0001-data-access.md).
/// </summary>
public interface IDatabase
{
    SqlDialect Dialect { get; }

    /// <summary>Opens a pooled connection. Dispose it when done.</summary>
    Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Runs <paramref name="work"/> in a write transaction and commits it. On SQLite the
    /// transaction takes the write lock up front (BEGIN IMMEDIATE) so it cannot fail half-way
    /// with SQLITE_BUSY when it upgrades from reading to writing.
    /// </summary>
    Task<T> InTransactionAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken);

    /// <summary>Cheap round trip for readiness checks.</summary>
    Task PingAsync(CancellationToken cancellationToken);
}
