using Npgsql;

namespace Fundament.Tests.Infrastructure;

/// <summary>
/// The server on a real PostgreSQL, in a database of its own created for this fixture and dropped
/// after it. Available when <c>FUNDAMENT_TEST_POSTGRES</c> holds a connection string whose user
/// may create databases; otherwise the tests using it are skipped.
/// </summary>
public sealed class PostgresFundamentFactory : FundamentFactory
{
    /// <summary>More settings, for suites that need them.</summary>
    public IEnumerable<KeyValuePair<string, string>> Extra { get; init; } = [];

    public const string Variable = "FUNDAMENT_TEST_POSTGRES";

    private readonly string _masterKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public static string? AdminConnectionString => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } v ? v : null;

    public static bool Available => AdminConnectionString is not null;

    public string? ConnectionString { get; private set; }

    public override async ValueTask InitializeAsync()
    {
        if (AdminConnectionString is null)
        {
            return;
        }
        ConnectionString = await TestDatabases.CreateAsync(AdminConnectionString);
    }

    protected override IEnumerable<KeyValuePair<string, string>> Settings() => SettingsForReplica();

    /// <summary>The settings of this server: another server started with them shares its database and master key.</summary>
    public IEnumerable<KeyValuePair<string, string>> SettingsForReplica() =>
    [
        new("Fundament:Storage:Provider", "postgres"),
        new("ConnectionStrings:Fundament", ConnectionString ?? "Host=127.0.0.1;Port=1"),
        new("Fundament:MasterKey", _masterKey),
        .. Extra,
    ];

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (ConnectionString is not null)
        {
            await TestDatabases.DropAsync(AdminConnectionString!, ConnectionString);
        }
    }
}

/// <summary>Creates and drops throwaway PostgreSQL databases for tests.</summary>
public static class TestDatabases
{
    public static async Task<string> CreateAsync(string adminConnectionString)
    {
        var name = "fundament_test_" + Guid.NewGuid().ToString("N")[..16];
        await using (var connection = new NpgsqlConnection(adminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(adminConnectionString) { Database = name }.ConnectionString;
    }

    public static async Task DropAsync(string adminConnectionString, string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database;
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(adminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }
}
