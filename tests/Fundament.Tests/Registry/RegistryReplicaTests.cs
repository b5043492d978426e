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
    private ReplicaPair _pair = null!;

    private ConfiguredFundamentFactory ReplicaA => _pair.A;

    private ConfiguredFundamentFactory ReplicaB => _pair.B;

    public async ValueTask InitializeAsync() => _pair = await ReplicaPair.StartAsync();

    public async ValueTask DisposeAsync()
    {
        if (_pair is not null)
        {
            await _pair.DisposeAsync();
        }
    }

    [Fact]
    public async Task ARegistrationThroughOne_IsVisibleThroughTheOther_AndEachCheckRunsOnce()
    {
        await using var server = await CheckedService.StartAsync();
        using var adminA = await ReplicaA.AdminAsync();
        using var adminB = await ReplicaB.AdminAsync();
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

        var monitorA = ReplicaA.Services.GetRequiredService<HealthMonitor>();
        var monitorB = ReplicaB.Services.GetRequiredService<HealthMonitor>();
        for (var round = 1; round <= 3; round++)
        {
            await Task.WhenAll(monitorA.PassAsync(true, _ct), monitorB.PassAsync(true, _ct), monitorA.PassAsync(true, _ct), monitorB.PassAsync(true, _ct));
            Assert.Equal(6 * round, server.Checks);
            ReplicaA.Time.Advance(TimeSpan.FromSeconds(12));
        }
        var passing = (await (await adminB.GetAsync("/api/v1/registry/services/checked/instances?healthy=true", _ct)).JsonAsync()).AsArray();
        Assert.Equal(6, passing.Count);
    }

    [Fact]
    public async Task AWatchOnOneReplica_AnswersAChangeMadeThroughTheOther()
    {
        using var adminA = await ReplicaA.AdminAsync();
        using var adminB = await ReplicaB.AdminAsync();
        var first = await adminB.GetAsync("/api/v1/registry/services/watched/instances", _ct);
        var index = long.Parse(first.Headers.GetValues("X-Fundament-Index").Single(), System.Globalization.CultureInfo.InvariantCulture);
        var watch = adminB.GetAsync($"/api/v1/registry/services/watched/instances?index={index}&wait=5m", _ct);
        (await adminA.PostAsJsonAsync("/api/v1/registry/instances", new { service = "watched", address = "127.0.0.1", port = 7000 }, _ct)).EnsureSuccessStatusCode();
        await Task.Delay(100, _ct);
        Assert.False(watch.IsCompleted);

        // Replica B notices at its next poll of the index (every 500 ms), not at the end of the wait.
        ReplicaA.Time.Advance(TimeSpan.FromMilliseconds(600));
        var answered = await watch.WaitAsync(TimeSpan.FromSeconds(30), _ct);
        Assert.Single((await answered.JsonAsync()).AsArray());
    }
}
