using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;

namespace Fundament.Core.Storage;

/// <summary>
/// The ambient write transaction of one logical change (see <see cref="IDatabase.InUnitOfWorkAsync"/>
/// and ADR 0013). While one is open on the current async flow, every <see cref="IDatabase.OpenAsync"/>
/// and <see cref="IDatabase.InTransactionAsync"/> joins it instead of opening a connection of its
/// own, so a store's write and the audit entry recording it commit together or not at all, without
/// every store having to pass a transaction around. Work that must follow the commit (waking
/// watchers, dropping caches) registers with <see cref="AfterCommit"/>.
/// </summary>
public sealed class UnitOfWork
{
    private static readonly AsyncLocal<UnitOfWork?> Ambient = new();

    private List<Action>? _afterCommit;
    private int _savepoints;

    private UnitOfWork(DbConnection connection, DbTransaction transaction)
    {
        Connection = new AmbientConnection(connection, transaction);
        Transaction = transaction;
    }

    /// <summary>The unit of work the current flow runs in, if any.</summary>
    public static UnitOfWork? Current => Ambient.Value;

    /// <summary>The shared connection; disposing it does nothing, and its commands join <see cref="Transaction"/>.</summary>
    public DbConnection Connection { get; }

    public DbTransaction Transaction { get; }

    /// <summary>Runs <paramref name="action"/> once the current unit of work has committed (never if it rolls back), or at once outside one.</summary>
    public static void AfterCommit(Action action)
    {
        if (Ambient.Value is { } current)
        {
            (current._afterCommit ??= []).Add(action);
        }
        else
        {
            action();
        }
    }

    /// <summary>
    /// Runs a store's own transaction inside the unit of work, behind a savepoint: if it throws
    /// (a unique violation a store expects and handles, say), only its part is undone and the unit
    /// stays usable; on PostgreSQL a failed statement would otherwise abort the whole transaction.
    /// </summary>
    internal async Task<T> NestedAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work)
    {
        var name = "fundament_sp" + (++_savepoints).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await ExecuteAsync($"SAVEPOINT {name}");
        T result;
        try
        {
            result = await work(Connection, Transaction);
        }
        catch
        {
            await ExecuteAsync($"ROLLBACK TO SAVEPOINT {name}");
            throw;
        }
        await ExecuteAsync($"RELEASE SAVEPOINT {name}");
        return result;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var command = Connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(CancellationToken.None);
    }

    /// <summary>
    /// Runs <paramref name="work"/> as the ambient unit of work on <paramref name="transaction"/> and
    /// commits. An exception rolls everything back (the transaction is disposed uncommitted).
    /// </summary>
    internal static async Task<T> RunAsync<T>(DbConnection connection, DbTransaction transaction, Func<Task<T>> work)
    {
        var unit = new UnitOfWork(connection, transaction);
        // Set inside this async method, the value flows to everything it awaits and is gone when it returns.
        Ambient.Value = unit;
        var result = await work();
        Ambient.Value = null;
        // Once the change is made, the commit must not be abandoned half-way by a caller going away.
        await transaction.CommitAsync(CancellationToken.None);
        foreach (var action in unit._afterCommit ?? [])
        {
            action();
        }
        return result;
    }

    /// <summary>
    /// The unit's connection as stores see it: commands carry the transaction (Microsoft.Data.Sqlite
    /// requires it), and Close, Dispose and BeginTransaction do nothing to the real connection.
    /// </summary>
    private sealed class AmbientConnection(DbConnection inner, DbTransaction transaction) : DbConnection
    {
        [AllowNull]
        public override string ConnectionString
        {
            get => inner.ConnectionString;
            set => throw new NotSupportedException("The unit of work's connection cannot be changed.");
        }

        public override string Database => inner.Database;

        public override string DataSource => inner.DataSource;

        public override string ServerVersion => inner.ServerVersion;

        public override ConnectionState State => inner.State;

        public override void ChangeDatabase(string databaseName) => throw new NotSupportedException("The unit of work's connection cannot be changed.");

        public override void Close()
        {
        }

        public override void Open()
        {
        }

        public override Task OpenAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel) =>
            throw new InvalidOperationException("A unit of work is already a transaction; use IDatabase.InTransactionAsync, which joins it.");

        protected override DbCommand CreateDbCommand()
        {
            var command = inner.CreateCommand();
            command.Transaction = transaction;
            return command;
        }

        protected override void Dispose(bool disposing)
        {
        }

        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
