namespace Fundament.Tests.Infrastructure;

/// <summary>
/// Two replicas of the server on one fresh PostgreSQL database, sharing a master key and a fake
/// clock, as a scaled-out deployment runs them. Skips the test when PostgreSQL is not configured.
/// </summary>
public sealed class ReplicaPair : IAsyncDisposable
{
    private readonly string _connectionString;

    private ReplicaPair(string connectionString, ConfiguredFundamentFactory a, ConfiguredFundamentFactory b)
    {
        _connectionString = connectionString;
        A = a;
        B = b;
    }

    public ConfiguredFundamentFactory A { get; }

    public ConfiguredFundamentFactory B { get; }

    public static async Task<ReplicaPair> StartAsync(params KeyValuePair<string, string>[] extra)
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        var connectionString = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
        KeyValuePair<string, string>[] settings =
        [
            new("Fundament:Storage:Provider", "postgres"),
            new("ConnectionStrings:Fundament", connectionString),
            new("Fundament:MasterKey", Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))),
            .. extra,
        ];
        var a = new ConfiguredFundamentFactory(settings);
        var b = new ConfiguredFundamentFactory(settings) { Time = a.Time };
        // Start both: the second finds the schema, the admin and the signing key already there.
        a.CreateClient().Dispose();
        b.CreateClient().Dispose();
        return new ReplicaPair(connectionString, a, b);
    }

    public async ValueTask DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
        await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, _connectionString);
    }
}
