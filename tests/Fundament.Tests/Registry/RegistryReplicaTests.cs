using System.Net;
using System.Net.Http.Json;
using Fundament.Registry.Monitoring;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Registry;

/// <summary>Two control replicas on one PostgreSQL: one registry, checks split by lease.</summary>
public sealed class RegistryReplicaTests : IAsyncLifetime
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
        ];
        _a = new ConfiguredFundamentFactory(settings);
        _b = new ConfiguredFundamentFactory(settings) { Time = _a.Time };
        _a.CreateClient().Dispose();
        _b.CreateClient().Dispose();
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
    public async Task ARegistrationThroughOne_IsVisibleThroughTheOther_AndEachCheckRunsOnce()
    {
        await using var server = await CheckedService.StartAsync();
        using var adminA = await _a.AdminAsync();
        using var adminB = await _b.AdminAsync();
        var ids = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            var response = await adminA.PostAsJsonAsync("/api/v1/registry/instances", new
            {
                service = "checked",
                instanceId = $"checked-{i}",
                address = "127.0.0.1",
                port = server.Port,
                check = new { http = "/health/ready", interval = "10s", timeout = "2s" },
            }, _ct);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            ids.Add($"checked-{i}");
        }
        Assert.Equal(6, (await (await adminB.GetAsync("/api/v1/registry/services/checked/instances", _ct)).JsonAsync()).AsArray().Count);

        var monitorA = _a.Services.GetRequiredService<HealthMonitor>();
        var monitorB = _b.Services.GetRequiredService<HealthMonitor>();
        for (var round = 1; round <= 3; round++)
        {
            await Task.WhenAll(monitorA.PassAsync(true, _ct), monitorB.PassAsync(true, _ct), monitorA.PassAsync(true, _ct), monitorB.PassAsync(true, _ct));
            Assert.Equal(6 * round, server.Checks);
            _a.Time.Advance(TimeSpan.FromSeconds(12));
        }
        var passing = (await (await adminB.GetAsync("/api/v1/registry/services/checked/instances?healthy=true", _ct)).JsonAsync()).AsArray();
        Assert.Equal(6, passing.Count);
    }

    [Fact]
    public async Task AWatchOnOneReplica_AnswersAChangeMadeThroughTheOther()
    {
        using var adminA = await _a.AdminAsync();
        using var adminB = await _b.AdminAsync();
        var first = await adminB.GetAsync("/api/v1/registry/services/watched/instances", _ct);
        var index = long.Parse(first.Headers.GetValues("X-Fundament-Index").Single(), System.Globalization.CultureInfo.InvariantCulture);
        var watch = adminB.GetAsync($"/api/v1/registry/services/watched/instances?index={index}&wait=5m", _ct);
        (await adminA.PostAsJsonAsync("/api/v1/registry/instances", new { service = "watched", address = "127.0.0.1", port = 7000 }, _ct)).EnsureSuccessStatusCode();
        await Task.Delay(100, _ct);
        Assert.False(watch.IsCompleted);

        // Replica B notices at its next poll of the index (every 500 ms), not at the end of the wait.
        _a.Time.Advance(TimeSpan.FromMilliseconds(600));
        var answered = await watch.WaitAsync(TimeSpan.FromSeconds(30), _ct);
        Assert.Single((await answered.JsonAsync()).AsArray());
    }
}
