using System.Net;
using System.Text.Json.Nodes;
using Fundament.Alerts;
using Fundament.Cluster;
using Fundament.Core.Hosting;
using Fundament.Core.Storage;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Cluster;

/// <summary>Cluster membership as an operator sees it: <c>GET /api/v1/cluster/nodes</c>, node status over time, leases, the alert and the metric.</summary>
public sealed class ClusterTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly ConfiguredFundamentFactory _factory = new([new("Fundament:Roles", "control,gateway"), new("Fundament:Cluster:ForgetAfter", "00:05:00")]);

    // The suite's factory beats by hand (Fundament:Cluster:HeartbeatEnabled=false): the first beat is the start-up one.
    public async ValueTask InitializeAsync() => await _factory.Services.GetRequiredService<NodeHeartbeat>().PassAsync(_ct);

    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    private async Task<JsonNode> NodesAsync()
    {
        using var admin = await _factory.AdminAsync();
        var response = await admin.GetAsync("/api/v1/cluster/nodes", _ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.JsonAsync();
    }

    private static JsonNode Node(JsonNode cluster, string id) => cluster["nodes"]!.AsArray().Single(n => n!["id"]!.GetValue<string>() == id)!;

    /// <summary>Another node on the same store, as its own heartbeat would record it.</summary>
    private Task JoinAsync(string id, params string[] roles) =>
        _factory.Services.GetRequiredService<NodeStore>().HeartbeatAsync(
            new NodeIdentity(id, "host-" + id, roles.ToHashSet(), "0.9.0+old", _factory.Time.GetUtcNow()), _ct);

    private Task HeartbeatAsync() => _factory.Services.GetRequiredService<NodeHeartbeat>().PassAsync(_ct);

    [Fact]
    public async Task TheNodeLists_ItselfAlive_WithItsRolesVersionAndTheLeasesItHolds()
    {
        var self = _factory.Services.GetRequiredService<NodeIdentity>();
        await _factory.Services.GetRequiredService<LeaseStore>().TryAcquireAsync(AlertEvaluator.LeaseName, TimeSpan.FromMinutes(1), _ct);

        var cluster = await NodesAsync();
        Assert.Equal(self.Id, cluster["self"]!.GetValue<string>());
        var node = Node(cluster, self.Id);
        Assert.Equal("alive", node["status"]!.GetValue<string>());
        Assert.Equal(["control", "gateway"], node["roles"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Equal(NodeIdentity.BuildVersion, node["version"]!.GetValue<string>());
        Assert.Equal(Environment.MachineName, node["host"]!.GetValue<string>());
        Assert.Contains(node["leases"]!.AsArray(), l => l!["name"]!.GetValue<string>() == AlertEvaluator.LeaseName);
        Assert.Equal(1, cluster["liveNodesByRole"]!["control"]!.GetValue<int>());
        Assert.Equal(0, cluster["liveNodesByRole"]!["media"]!.GetValue<int>());
    }

    [Fact]
    public async Task ANodeThatStopsHeartbeating_TurnsSuspect_ThenGone_AndItsRoleAlerts_UntilItIsForgotten()
    {
        await JoinAsync("media-1", "media", "media-worker");
        var cluster = await NodesAsync();
        Assert.Equal("alive", Node(cluster, "media-1")["status"]!.GetValue<string>());
        Assert.Equal(["0.9.0+old", NodeIdentity.BuildVersion], cluster["versions"]!.AsArray().Select(v => v!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Equal(1, cluster["liveNodesByRole"]!["media"]!.GetValue<int>());

        // 31 s without a heartbeat (this node keeps beating): suspect, and the media role has no live node.
        _factory.Time.Advance(TimeSpan.FromSeconds(31));
        await HeartbeatAsync();
        cluster = await NodesAsync();
        Assert.Equal("suspect", Node(cluster, "media-1")["status"]!.GetValue<string>());
        Assert.Equal("alive", Node(cluster, _factory.Services.GetRequiredService<NodeIdentity>().Id)["status"]!.GetValue<string>());
        Assert.Equal(0, cluster["liveNodesByRole"]!["media"]!.GetValue<int>());

        // The built-in rule: pending at once, firing after its 30 s, naming the role and the node.
        var evaluator = _factory.Services.GetRequiredService<AlertEvaluator>();
        await evaluator.EvaluateAsync(_ct);
        _factory.Time.Advance(TimeSpan.FromSeconds(31));
        await HeartbeatAsync();
        await evaluator.EvaluateAsync(_ct);
        using (var admin = await _factory.AdminAsync())
        {
            var firing = (await (await admin.GetAsync("/api/v1/alerts?state=firing", _ct)).JsonAsync()).AsArray();
            Assert.Equal(["role:media", "role:media-worker"], firing.Where(a => a!["ruleId"]!.GetValue<string>() == "role-without-live-node").Select(a => a!["subject"]!.GetValue<string>()).Order());
            Assert.Contains("media-1 suspect", firing.First(a => a!["subject"]!.GetValue<string>() == "role:media")!["summary"]!.GetValue<string>(), StringComparison.Ordinal);

            // An alive node cannot be forgotten; a suspect or gone one can (a drained node), which is audited and ends the alert.
            await (await admin.DeleteAsync($"/api/v1/cluster/nodes/{_factory.Services.GetRequiredService<NodeIdentity>().Id}", _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
            await (await admin.DeleteAsync("/api/v1/cluster/nodes/no-such-node", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        }

        _factory.Time.Advance(TimeSpan.FromMinutes(2));
        await HeartbeatAsync();
        Assert.Equal("gone", Node(await NodesAsync(), "media-1")["status"]!.GetValue<string>());

        using (var admin = await _factory.AdminAsync())
        {
            Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/cluster/nodes/media-1", _ct)).StatusCode);
            var audit = (await (await admin.GetAsync("/api/v1/audit?action=cluster.node.forget", _ct)).JsonAsync())["items"]!.AsArray();
            Assert.Contains(audit, e => e!["target"]!.GetValue<string>() == "node:media-1");
            await evaluator.EvaluateAsync(_ct);
            Assert.DoesNotContain((await (await admin.GetAsync("/api/v1/alerts?state=firing", _ct)).JsonAsync()).AsArray(), a => a!["ruleId"]!.GetValue<string>() == "role-without-live-node");
        }
        Assert.DoesNotContain((await NodesAsync())["nodes"]!.AsArray(), n => n!["id"]!.GetValue<string>() == "media-1");
    }

    [Fact]
    public async Task ANodeGoneLongerThanForgetAfter_IsForgotten_ByTheOthersHeartbeat()
    {
        await JoinAsync("old-1", "gateway");
        _factory.Time.Advance(TimeSpan.FromMinutes(6));
        await HeartbeatAsync();
        Assert.DoesNotContain((await NodesAsync())["nodes"]!.AsArray(), n => n!["id"]!.GetValue<string>() == "old-1");
    }

    [Fact]
    public async Task OnlyThe500MostRecentlyGoneNodes_AreKept()
    {
        for (var i = 0; i < 520; i++)
        {
            await JoinAsync($"loop-{i:D3}", "media-worker");
            _factory.Time.Advance(TimeSpan.FromMilliseconds(100));
        }
        _factory.Time.Advance(TimeSpan.FromMinutes(3));
        await HeartbeatAsync();
        var nodes = (await NodesAsync())["nodes"]!.AsArray().Select(n => n!["id"]!.GetValue<string>()).ToList();
        Assert.Equal(501, nodes.Count);
        Assert.DoesNotContain("loop-019", nodes);
        Assert.Contains("loop-020", nodes);
    }

    [Fact]
    public async Task TheMetric_CountsNodesPerRoleAndStatus_EveryRoleIncluded()
    {
        await JoinAsync("media-2", "media");
        await HeartbeatAsync();
        using var client = _factory.CreateClient();
        var text = await client.GetStringAsync("/metrics", _ct);
        Assert.Equal(1, Sample(text, "control", "alive"));
        Assert.Equal(1, Sample(text, "media", "alive"));
        Assert.Equal(0, Sample(text, "media-worker", "alive"));
        Assert.Equal(0, Sample(text, "gateway", "gone"));
    }

    private static double Sample(string text, string role, string status)
    {
        var line = Assert.Single(text.Split('\n'), l => l.StartsWith("fundament_cluster_nodes{", StringComparison.Ordinal)
            && l.Contains($"role=\"{role}\"", StringComparison.Ordinal) && l.Contains($"status=\"{status}\"", StringComparison.Ordinal));
        return double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task OnlyHoldersOfClusterPermissions_SeeOrForgetNodes()
    {
        using var anonymous = _factory.CreateClient();
        await (await anonymous.GetAsync("/api/v1/cluster/nodes", _ct)).AssertProblemAsync(HttpStatusCode.Unauthorized);
        var (guest, _, _) = await _factory.UserClientAsync("guest");
        await (await guest.GetAsync("/api/v1/cluster/nodes", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await guest.DeleteAsync("/api/v1/cluster/nodes/x", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task ANodeOnAnOlderBinaryThanTheSchema_IsNotReady_AndSaysWhy()
    {
        using var client = _factory.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/ready", _ct)).StatusCode);

        // A newer binary elsewhere has migrated the vault one step further.
        var database = _factory.Services.GetRequiredService<IDatabase>();
        await using (var connection = await database.OpenAsync(_ct))
        {
            await Dapper.SqlMapper.ExecuteAsync(connection,
                "INSERT INTO fundament_schema_migrations (module, version, name, applied_at) VALUES ('vault', 999, 'from the future', 0)");
        }
        var response = await client.GetAsync("/health/ready", _ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var schema = (await response.JsonAsync())["checks"]!["schema"]!;
        Assert.Equal("Unhealthy", schema["status"]!.GetValue<string>());
        Assert.Contains("module 'vault' is at schema version 999", schema["description"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains(NodeIdentity.BuildVersion, schema["description"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
