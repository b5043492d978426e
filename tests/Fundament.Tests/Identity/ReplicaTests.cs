using System.Net;
using System.Net.Http.Json;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Identity;

/// <summary>
/// Two replicas of the control role on one PostgreSQL database: what one issues the other accepts,
/// and their concurrent audit appends form one valid chain.
/// </summary>
public sealed class ReplicaTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private string? _connectionString;
    private ConfiguredFundamentFactory _a = null!;
    private ConfiguredFundamentFactory _b = null!;

    public async ValueTask InitializeAsync()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        _connectionString = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
        KeyValuePair<string, string>[] settings =
        [
            new("Fundament:Storage:Provider", "postgres"),
            new("ConnectionStrings:Fundament", _connectionString),
            new("Fundament:MasterKey", Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))),
            new("Fundament:Roles", "control"),
        ];
        _a = new ConfiguredFundamentFactory(settings);
        _b = new ConfiguredFundamentFactory(settings) { Time = _a.Time };
        // Start both (the second finds the schema, the admin and the signing key already there).
        _a.CreateClient().Dispose();
        _b.CreateClient().Dispose();
        await Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (_a is not null)
        {
            await _a.DisposeAsync();
            await _b.DisposeAsync();
        }
        if (_connectionString is not null)
        {
            await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, _connectionString);
        }
    }

    [Fact]
    public async Task TokensAndSessions_IssuedByOneReplica_WorkOnTheOther()
    {
        var tokens = await _a.LoginAsync("admin", FundamentFactory.AdminPassword);
        using var onB = _b.Bearer(tokens["access_token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/me", _ct)).StatusCode);

        var refresh = tokens["refresh_token"]!.GetValue<string>();
        using var anonymousB = _b.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await anonymousB.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = refresh }, _ct)).StatusCode);
        using var anonymousA = _a.CreateClient();
        await (await anonymousA.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = refresh }, _ct)).AssertProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task ConcurrentAppendsFromBothReplicas_FormOneValidChain()
    {
        var logins = Enumerable.Range(0, 24).Select(i => (i % 2 == 0 ? _a : _b).LoginAsync("admin", FundamentFactory.AdminPassword));
        await Task.WhenAll(logins);

        using var admin = await _b.AdminAsync();
        var verification = await (await admin.GetAsync("/api/v1/audit/verify", _ct)).JsonAsync();
        Assert.True(verification["valid"]!.GetValue<bool>(), verification.ToJsonString());
        Assert.True(verification["entries"]!.GetValue<long>() >= 25);
    }
}
