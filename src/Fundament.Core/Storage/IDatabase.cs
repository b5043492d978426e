using System.Data.Common;

namespace Fundament.Core.Storage;

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

    /// <summary>
    /// Runs <paramref name="work"/> as one unit of work: a write transaction that every store call
    /// and audit append inside it joins (ambient, see <see cref="UnitOfWork"/>), committed when the
    /// work returns and rolled back when it throws. Inside a unit of work this simply runs the work.
    /// Keep it to the writes and what they must agree with: a unit holds the write lock (SQLite) or
    /// its row locks (PostgreSQL) until it ends, so slow work (hashing a password, streaming a body)
    /// belongs before it.
    /// </summary>
    Task<T> InUnitOfWorkAsync<T>(Func<Task<T>> work, CancellationToken cancellationToken);

    /// <summary>Cheap round trip for readiness checks.</summary>
    Task PingAsync(CancellationToken cancellationToken);
}
