using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Fundament.Alerts;
using Fundament.Delivery;
using Fundament.Registry.Monitoring;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Alerts;

public abstract class AlertsTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private Task EvaluateAsync() => factory.Services.GetRequiredService<AlertEvaluator>().EvaluateAsync(_ct);

    private Task<int> DispatchAsync() => factory.Services.GetRequiredService<DeliveryDispatcher>().PassAsync(_ct);

    private Task MonitorAsync() => factory.Services.GetRequiredService<HealthMonitor>().PassAsync(true, _ct);

    [Fact]
    public async Task LosingTheLastPassingInstance_FiresASignedWebhook_RetriedUntilAccepted_ThenResolves()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Status = 500;
        var service = "svc-" + Guid.NewGuid().ToString("N")[..10];
        using var admin = await factory.AdminAsync();
        var channel = await (await admin.PostAsJsonAsync("/api/v1/alerts/channels", new { name = "hook-" + service, kind = "webhook", target = receiver.Url }, _ct)).JsonAsync();
        var secret = channel["secret"]!.GetValue<string>();
        // Only this test's service, so other tests' services do not add notifications here.
        (await admin.PutAsJsonAsync("/api/v1/alerts/rules/service-no-passing", new { service }, _ct)).EnsureSuccessStatusCode();

        // Firing is a domain event on the bus too.
        var watcher = "w" + Guid.NewGuid().ToString("N")[..10];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/topics/fundament.alert.firing/subscriptions", new { group = watcher }, _ct)).StatusCode);

        var (client, _) = await factory.ServiceClientAsync(service);
        var id = (await (await client.PostAsJsonAsync("/api/v1/registry/instances", new { service, address = "127.0.0.1", port = 9999, check = new { ttl = "15s" } }, _ct)).JsonAsync())["instanceId"]!.GetValue<string>();
        await EvaluateAsync();
        Assert.DoesNotContain((await (await admin.GetAsync("/api/v1/alerts", _ct)).JsonAsync()).AsArray(), a => a!["subject"]!.GetValue<string>() == $"service:{service}");

        // The only instance misses its TTL: pending at once, firing after the rule's 30s.
        factory.Time.Advance(TimeSpan.FromSeconds(16));
        await MonitorAsync();
        await EvaluateAsync();
        using var admin2 = await factory.AdminAsync();
        var pending = (await (await admin2.GetAsync("/api/v1/alerts?state=pending", _ct)).JsonAsync()).AsArray().Single(a => a!["subject"]!.GetValue<string>() == $"service:{service}")!;
        Assert.Equal("service-no-passing", pending["ruleId"]!.GetValue<string>());
        factory.Time.Advance(TimeSpan.FromSeconds(31));
        await EvaluateAsync();
        using var admin3 = await factory.AdminAsync();
        var firing = (await (await admin3.GetAsync("/api/v1/alerts?state=firing", _ct)).JsonAsync()).AsArray().Single(a => a!["subject"]!.GetValue<string>() == $"service:{service}")!;
        var onTheBus = (await (await admin3.PostAsync($"/api/v1/topics/fundament.alert.firing/subscriptions/{watcher}/pull?max=100", null, _ct)).JsonAsync())["messages"]!.AsArray()
            .Single(m => m!["body"]!["data"]!["id"]!.GetValue<string>() == firing["id"]!.GetValue<string>())!;
        Assert.Equal("system", onTheBus["key"]!.GetValue<string>());
        Assert.Equal("firing", onTheBus["body"]!["data"]!["state"]!.GetValue<string>());

        // The receiver fails twice; each attempt is recorded and retried with back-off.
        Assert.Equal(1, await DispatchAsync());
        Assert.Equal(0, await DispatchAsync());
        factory.Time.Advance(TimeSpan.FromSeconds(7));
        Assert.Equal(1, await DispatchAsync());
        receiver.Status = 200;
        factory.Time.Advance(TimeSpan.FromSeconds(13));
        Assert.Equal(1, await DispatchAsync());

        var received = receiver.Received.ToList();
        Assert.Equal(3, received.Count);
        Assert.Single(received.Select(r => r.Headers["X-Fundament-Delivery"]).Distinct());
        var (headers, body) = received[^1];
        Assert.Equal("alert.firing", headers["X-Fundament-Event"]);
        var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));
        Assert.Equal(expected, headers["X-Fundament-Signature"]);
        var payload = JsonNode.Parse(body)!;
        Assert.Equal(firing["id"]!.GetValue<string>(), payload["alert"]!["id"]!.GetValue<string>());
        Assert.Equal("firing", payload["alert"]!["state"]!.GetValue<string>());

        using var admin4 = await factory.AdminAsync();
        var deliveries = (await (await admin4.GetAsync($"/api/v1/deliveries?source=alert:{firing["id"]!.GetValue<string>()}", _ct)).JsonAsync()).AsArray();
        var delivery = Assert.Single(deliveries)!;
        Assert.Equal("delivered", delivery["state"]!.GetValue<string>());
        var detail = await (await admin4.GetAsync($"/api/v1/deliveries/{delivery["id"]!.GetValue<string>()}", _ct)).JsonAsync();
        Assert.Equal([500, 500, 200], detail["attempts"]!.AsArray().Select(a => a!["statusCode"]!.GetValue<int>()));

        // The instance comes back: the alert resolves and says so.
        Assert.Equal(HttpStatusCode.NoContent, (await client.PutAsync($"/api/v1/registry/instances/{id}/heartbeat", null, _ct)).StatusCode);
        await EvaluateAsync();
        Assert.Equal(1, await DispatchAsync());
        Assert.Equal("alert.resolved", receiver.Received.Last().Headers["X-Fundament-Event"]);
        var resolved = (await (await admin4.GetAsync("/api/v1/alerts?state=resolved", _ct)).JsonAsync()).AsArray().Single(a => a!["id"]!.GetValue<string>() == firing["id"]!.GetValue<string>())!;
        Assert.NotNull(resolved["resolvedAt"]);
    }

    [Fact]
    public async Task OverdueSecret_RaisesAnAlert()
    {
        using var admin = await factory.AdminAsync();
        var path = "rot/" + Guid.NewGuid().ToString("N");
        await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "x", rotateEvery = "1h" }, _ct);
        factory.Time.Advance(TimeSpan.FromHours(2));
        await EvaluateAsync();
        using var fresh = await factory.AdminAsync();
        var alerts = (await (await fresh.GetAsync("/api/v1/alerts?state=firing", _ct)).JsonAsync()).AsArray();
        Assert.Contains(alerts, a => a!["subject"]!.GetValue<string>() == $"secret:{path}");
    }

    [Fact]
    public async Task Rules_AreAdjustable_BuiltInsCannotBeDeleted_AndBadInputIs400()
    {
        using var admin = await factory.AdminAsync();
        var rules = (await (await admin.GetAsync("/api/v1/alerts/rules", _ct)).JsonAsync()).AsArray();
        Assert.Equal(["backend-down", "dead-letters-growing", "instance-critical", "role-without-live-node", "secret-integrity", "secret-rotation-overdue", "service-no-passing"], rules.Where(r => r!["builtin"]!.GetValue<bool>()).Select(r => r!["id"]!.GetValue<string>()).Order());
        var updated = await (await admin.PutAsJsonAsync("/api/v1/alerts/rules/instance-critical", new { @for = "10m", severity = "critical" }, _ct)).JsonAsync();
        Assert.Equal("10m", updated["for"]!.GetValue<string>());
        await (await admin.DeleteAsync("/api/v1/alerts/rules/instance-critical", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await admin.PostAsJsonAsync("/api/v1/alerts/rules", new { kind = "cpu_high", name = "x" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PutAsJsonAsync("/api/v1/alerts/rules/instance-critical", new { @for = "eventually" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/alerts/channels", new { name = "bad", kind = "webhook", target = "ftp://x" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/alerts/channels", new { name = "bad2", kind = "email", target = "not-an-address" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        var (guest, _, _) = await factory.UserClientAsync("guest");
        await (await guest.GetAsync("/api/v1/alerts", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task SlackChannel_ReceivesATextMessage()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        using var admin = await factory.AdminAsync();
        // Slack's incoming-webhook URLs carry their secret in the path.
        var secretPath = $"/services/T0{Random.Shared.Next(100000, 999999)}/B0{Random.Shared.Next(100000, 999999)}/{Guid.NewGuid():N}";
        var channel = await (await admin.PostAsJsonAsync("/api/v1/alerts/channels", new { name = "slack-" + Guid.NewGuid().ToString("N")[..8], kind = "slack", target = receiver.Url + secretPath }, _ct)).JsonAsync();
        Assert.Null(channel["secret"]);
        // The incoming-webhook URL is a credential: answers show only scheme and host.
        Assert.DoesNotContain("/hook", channel["channel"]!["target"]!.GetValue<string>(), StringComparison.Ordinal);
        var listed = (await (await admin.GetAsync("/api/v1/alerts/channels", _ct)).JsonAsync()).AsArray()
            .Single(c => c!["id"]!.GetValue<string>() == channel["channel"]!["id"]!.GetValue<string>())!;
        Assert.DoesNotContain("/hook", listed["target"]!.GetValue<string>(), StringComparison.Ordinal);
        var test = await admin.PostAsync($"/api/v1/alerts/channels/{channel["channel"]!["id"]!.GetValue<string>()}/test", null, _ct);
        Assert.Equal(HttpStatusCode.Accepted, test.StatusCode);
        await DispatchAsync();
        var (headers, body) = Assert.Single(receiver.Received);
        Assert.StartsWith("Test notification from Fundament", JsonNode.Parse(body)!["text"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.False(headers.ContainsKey("X-Fundament-Signature"));
        await (await admin.DeleteAsync($"/api/v1/alerts/channels/{channel["channel"]!["id"]!.GetValue<string>()}", _ct)).Content.ReadAsStringAsync(_ct);
        // Nothing the server logged while creating, listing and delivering to it (any level) holds the path.
        Assert.DoesNotContain(LogCanary.ViolationsSoFar, v => v.Contains(secretPath[^32..], StringComparison.Ordinal));
    }

    [Fact]
    public async Task GoneReceiver_KillsTheDelivery_AndRetryRevivesIt()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Status = 410;
        var queue = factory.Services.GetRequiredService<IDeliveryQueue>();
        var id = await queue.EnqueueAsync(new DeliveryRequest(DeliveryKind.Webhook, receiver.Url, "test.event", "{\"n\":1}", Secret: "a-secret-of-enough-length"), _ct);
        await DispatchAsync();
        using var admin = await factory.AdminAsync();
        Assert.Equal("dead", (await (await admin.GetAsync($"/api/v1/deliveries/{id}", _ct)).JsonAsync())["delivery"]!["state"]!.GetValue<string>());

        receiver.Status = 204;
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync($"/api/v1/deliveries/{id}/retry", null, _ct)).StatusCode);
        await DispatchAsync();
        Assert.Equal("delivered", (await (await admin.GetAsync($"/api/v1/deliveries/{id}", _ct)).JsonAsync())["delivery"]!["state"]!.GetValue<string>());
        await (await admin.PostAsync($"/api/v1/deliveries/{id}/retry", null, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
    }
}

public sealed class SqliteAlertsTests(SqliteFundamentFactory factory) : AlertsTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresAlertsTests : AlertsTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresAlertsTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}

/// <summary>A delivery accepted before a restart is sent after it.</summary>
public sealed class DeliveryDurabilityTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_dataDir))
        {
            Directory.Delete(_dataDir, true);
        }
    }

    [Fact]
    public async Task AcceptedDelivery_SurvivesARestart()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var receiver = await WebhookReceiver.StartAsync();
        KeyValuePair<string, string>[] settings = [new("Fundament:DataDir", _dataDir)];
        string id;
        await using (var before = new ConfiguredFundamentFactory(settings))
        {
            id = await before.Services.GetRequiredService<IDeliveryQueue>().EnqueueAsync(
                new DeliveryRequest(DeliveryKind.Webhook, receiver.Url, "test.restart", "{\"ok\":true}", Secret: "restart-secret-0123456789"), ct);
        }
        Assert.Empty(receiver.Received);

        await using var after = new ConfiguredFundamentFactory(settings);
        Assert.Equal(1, await after.Services.GetRequiredService<DeliveryDispatcher>().PassAsync(ct));
        var (headers, body) = Assert.Single(receiver.Received);
        Assert.Equal(id, headers["X-Fundament-Delivery"]);
        Assert.Equal("sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes("restart-secret-0123456789"), body)), headers["X-Fundament-Signature"]);
    }
}
