using System.Data.Common;
using Dapper;
using Fundament.Core.Storage;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace Fundament.Tests.Storage;

/// <summary>
/// What every module relies on from <see cref="IDatabase"/> and the migration runner, run against
/// each real engine.
/// </summary>
public abstract class DatabaseContractTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    protected IDatabase Database { get; set; } = null!;

    public abstract ValueTask InitializeAsync();

    public abstract ValueTask DisposeAsync();

    private MigrationRunner Runner(params IMigrationSource[] sources) =>
        new(Database, sources, new FakeTimeProvider(), NullLogger<MigrationRunner>.Instance);

    private sealed class TestMigrations(string module, params Migration[] migrations) : IMigrationSource
    {
        public string Module => module;

        public IReadOnlyList<Migration> Migrations => migrations;
    }

    private static TestMigrations Counter(string module) => new(module,
        new Migration(1, "counter", $"CREATE TABLE {module}_counter (id INTEGER NOT NULL PRIMARY KEY, value BIGINT NOT NULL, payload {{blob}} NULL, flag {{bool}} NOT NULL DEFAULT FALSE);"),
        new Migration(2, "seed", $"INSERT INTO {module}_counter (id, value) VALUES (1, 0);"));

    [Fact]
    public async Task Migrations_ApplyOnce_AndAreIdempotent()
    {
        var source = Counter("t_idem");
        Assert.Equal(2, await Runner(source).RunAsync(_ct));
        Assert.Equal(0, await Runner(source).RunAsync(_ct));
        await using var connection = await Database.OpenAsync(_ct);
        Assert.Equal(2, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fundament_schema_migrations WHERE module = 't_idem'"));
    }

    [Fact]
    public async Task Migrations_RefuseADatabaseFromANewerBinary()
    {
        await Runner(Counter("t_newer")).RunAsync(_ct);
        var older = new TestMigrations("t_newer", Counter("t_newer").Migrations[0]);
        var error = await Assert.ThrowsAsync<Fundament.Core.Hosting.StartupException>(() => Runner(older).RunAsync(_ct));
        Assert.Contains("newer than this binary", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Migrations_AFailingMigrationLeavesNoTrace()
    {
        var broken = new TestMigrations("t_broken",
            new Migration(1, "ok", "CREATE TABLE t_broken_a (id INTEGER NOT NULL PRIMARY KEY);"),
            new Migration(2, "fails", "CREATE TABLE t_broken_b (id INTEGER NOT NULL PRIMARY KEY); INSERT INTO no_such_table VALUES (1);"));
        await Assert.ThrowsAnyAsync<DbException>(() => Runner(broken).RunAsync(_ct));
        await using var connection = await Database.OpenAsync(_ct);
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT MAX(version) FROM fundament_schema_migrations WHERE module = 't_broken'"));
        // Version 2 rolled back whole, so a fixed binary can apply it again.
        await connection.ExecuteAsync("CREATE TABLE t_broken_b (id INTEGER NOT NULL PRIMARY KEY)");
    }

    [Fact]
    public async Task Transaction_ThatThrows_CommitsNothing()
    {
        await Runner(Counter("t_tx")).RunAsync(_ct);
        await Assert.ThrowsAsync<InvalidOperationException>(() => Database.InTransactionAsync<int>(async (connection, transaction) =>
        {
            await connection.ExecuteAsync("UPDATE t_tx_counter SET value = 42 WHERE id = 1", transaction: transaction);
            throw new InvalidOperationException("boom");
        }, _ct));
        await using var check = await Database.OpenAsync(_ct);
        Assert.Equal(0, await check.ExecuteScalarAsync<long>("SELECT value FROM t_tx_counter WHERE id = 1"));
    }

    [Fact]
    public async Task ConcurrentWriteTransactions_LoseNoUpdate()
    {
        await Runner(Counter("t_conc")).RunAsync(_ct);
        var sql = Database.Dialect.Expand("SELECT value FROM t_conc_counter WHERE id = 1{for_update}");
        await Parallel.ForEachAsync(Enumerable.Range(0, 40), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = _ct }, async (_, ct) =>
            await Database.InTransactionAsync(async (connection, transaction) =>
            {
                // Read-modify-write: only safe because write transactions serialize.
                var value = await connection.ExecuteScalarAsync<long>(sql, transaction: transaction);
                await connection.ExecuteAsync("UPDATE t_conc_counter SET value = @value WHERE id = 1", new { value = value + 1 }, transaction);
                return 0;
            }, ct));
        await using var check = await Database.OpenAsync(_ct);
        Assert.Equal(40, await check.ExecuteScalarAsync<long>("SELECT value FROM t_conc_counter WHERE id = 1"));
    }

    [Fact]
    public async Task UniqueViolation_IsRecognized_AndTypesRoundTrip()
    {
        await Runner(Counter("t_types")).RunAsync(_ct);
        await using var connection = await Database.OpenAsync(_ct);
        var error = await Assert.ThrowsAnyAsync<DbException>(() => connection.ExecuteAsync("INSERT INTO t_types_counter (id, value) VALUES (1, 5)"));
        Assert.True(Database.Dialect.IsUniqueViolation(error));

        byte[] payload = [0, 1, 2, 255];
        await connection.ExecuteAsync("INSERT INTO t_types_counter (id, value, payload, flag) VALUES (2, @big, @payload, @flag)", new { big = long.MaxValue, payload, flag = true });
        var row = await connection.QuerySingleAsync<(long Value, byte[] Payload, bool Flag)>("SELECT value, payload, flag FROM t_types_counter WHERE id = 2");
        Assert.Equal(long.MaxValue, row.Value);
        Assert.Equal(payload, row.Payload);
        Assert.True(row.Flag);
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM t_types_counter WHERE flag = TRUE"));
        var ids = await connection.QueryAsync<long>($"SELECT id FROM t_types_counter WHERE {Database.Dialect.InList("id", "ids")} ORDER BY id", new { ids = new long[] { 1, 2, 3 } });
        Assert.Equal([1L, 2L], ids);
    }

    [Fact]
    public async Task Ping_Answers()
    {
        await Database.PingAsync(_ct);
    }
}

public sealed class SqliteDatabaseContractTests : DatabaseContractTests
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));

    public override ValueTask InitializeAsync()
    {
        Database = new SqliteDatabase($"Data Source={Path.Combine(_folder, "contract.db")}");
        return ValueTask.CompletedTask;
    }

    public override ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, true);
        }
        catch (IOException)
        {
        }
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task Sqlite_UsesWriteAheadLogging()
    {
        await using var connection = await Database.OpenAsync(TestContext.Current.CancellationToken);
        Assert.Equal("wal", await connection.ExecuteScalarAsync<string>("PRAGMA journal_mode"));
    }
}

public sealed class PostgresDatabaseContractTests : DatabaseContractTests
{
    private string? _connectionString;

    public override async ValueTask InitializeAsync()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        _connectionString = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
        Database = new PostgresDatabase(new NpgsqlDataSourceBuilder(_connectionString).Build());
    }

    public override async ValueTask DisposeAsync()
    {
        if (Database is PostgresDatabase postgres)
        {
            await postgres.DisposeAsync();
        }
        if (_connectionString is not null)
        {
            await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, _connectionString);
        }
    }
}
