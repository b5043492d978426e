using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Registry.Monitoring;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Registry;

public abstract class RegistryApiTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private HealthMonitor Monitor => factory.Services.GetRequiredService<HealthMonitor>();

    private static string Svc() => "svc-" + Guid.NewGuid().ToString("N")[..10];

    private async Task<JsonNode> RegisterAsync(HttpClient client, object body)
    {
        var response = await client.PostAsJsonAsync("/api/v1/registry/instances", body, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_ct));
        return await response.JsonAsync();
    }

    private async Task<string> StatusAsync(HttpClient admin, string instanceId) =>
        (await (await admin.GetAsync($"/api/v1/registry/instances/{instanceId}", _ct)).JsonAsync())["status"]!.GetValue<string>();

    [Fact]
    public async Task RegistrationsStatusChangesAndDeregistrations_AreDomainEventsOnTheBus_ForTheOwner_OnceEach()
    {
        using var admin = await factory.AdminAsync();
        var publisher = factory.Services.GetRequiredService<Fundament.Registry.Instances.RegistryEventPublisher>();
        var watcher = "w" + Guid.NewGuid().ToString("N")[..10];
        foreach (var topic in new[] { "fundament.instance.registered", "fundament.instance.status_changed", "fundament.instance.deregistered" })
        {
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = watcher }, _ct)).StatusCode);
        }
        async Task<List<JsonNode>> EventsAsync(string topic, string instanceId)
        {
            var pulled = (await (await admin.PostAsync($"/api/v1/topics/{topic}/subscriptions/{watcher}/pull?max=100", null, _ct)).JsonAsync())["messages"]!.AsArray().Select(m => m!).ToList();
            if (pulled.Count > 0)
            {
                await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/{watcher}/ack", new { leaseIds = pulled.Select(m => m["leaseId"]!.GetValue<string>()).ToArray() }, _ct);
            }
            return pulled.Where(m => m["body"]!["data"]!["instanceId"]!.GetValue<string>() == instanceId).ToList();
        }

        var service = Svc();
        var (client, clientId) = await factory.ServiceClientAsync(service);
        var id = (await RegisterAsync(client, new { service, address = "10.1.2.3", port = 8080, check = new { ttl = "10s" } }))["instanceId"]!.GetValue<string>();
        // Nothing is on the bus until the publisher takes it from the outbox, and then once.
        Assert.Empty(await EventsAsync("fundament.instance.registered", id));
        Assert.True(await publisher.PassAsync(_ct) >= 1);
        Assert.Equal(0, await publisher.PassAsync(_ct));
        var registered = Assert.Single(await EventsAsync("fundament.instance.registered", id));
        Assert.Equal($"client:{clientId}", registered["key"]!.GetValue<string>());
        Assert.Equal(service, registered["body"]!["data"]!["service"]!.GetValue<string>());

        // The TTL runs out: critical, an event with from and to.
        factory.Time.Advance(TimeSpan.FromSeconds(11));
        await Monitor.PassAsync(true, _ct);
        await publisher.PassAsync(_ct);
        var changed = Assert.Single(await EventsAsync("fundament.instance.status_changed", id));
        Assert.Equal("critical", changed["body"]!["data"]!["to"]!.GetValue<string>());
        Assert.NotNull(changed["body"]!["data"]!["from"]);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/registry/instances/{id}", _ct)).StatusCode);
        await publisher.PassAsync(_ct);
        var gone = Assert.Single(await EventsAsync("fundament.instance.deregistered", id));
        Assert.Equal($"client:{clientId}", gone["key"]!.GetValue<string>());
    }

    [Fact]
    public async Task Registration_ReturnsHeartbeatConfigAndReadableSecrets_AndIsIdempotent()
    {
        var service = Svc();
        using var admin = await factory.AdminAsync();
        await admin.PutAsJsonAsync("/api/v1/config/entries", new { service, environment = "prod", key = "db.pool", value = 20 }, _ct);
        await admin.PutAsJsonAsync($"/api/v1/secrets/{service}/db", new { value = "pw" }, _ct);
        var (client, clientId) = await factory.ServiceClientAsync(service);
        await admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"client:{clientId}", pathPrefix = service, capabilities = new[] { "read" } }, _ct);

        var body = new { service, instanceId = service + "-1", address = "10.1.2.3", port = 8080, environment = "prod", version = "1.4.2", tags = new[] { "blue" }, metadata = new Dictionary<string, string> { ["zone"] = "a" }, check = new { ttl = "15s" }, deregisterAfter = "1m" };
        var registered = await RegisterAsync(client, body);
        Assert.Equal(service + "-1", registered["instanceId"]!.GetValue<string>());
        Assert.Equal("5s", registered["heartbeatInterval"]!.GetValue<string>());
        Assert.Equal(20, registered["config"]!["db.pool"]!.GetValue<int>());
        Assert.Equal([$"{service}/db"], registered["secrets"]!.AsArray().Select(s => s!.GetValue<string>()));

        await RegisterAsync(client, body);
        var instances = (await (await admin.GetAsync($"/api/v1/registry/services/{service}/instances", _ct)).JsonAsync()).AsArray();
        var instance = Assert.Single(instances)!;
        Assert.Equal("passing", instance["status"]!.GetValue<string>());
        Assert.Equal("10.1.2.3", instance["address"]!.GetValue<string>());
        Assert.Equal(8080, instance["port"]!.GetValue<int>());
        Assert.Equal("1.4.2", instance["version"]!.GetValue<string>());
        Assert.Equal("a", instance["metadata"]!["zone"]!.GetValue<string>());
    }

    [Fact]
    public async Task Registration_IsLimitedToTheClientsOwnOrGrantedServices()
    {
        var service = Svc();
        var other = Svc();
        var (client, clientId) = await factory.ServiceClientAsync(service);
        var denied = await client.PostAsJsonAsync("/api/v1/registry/instances", new { service = other, address = "127.0.0.1", port = 9000 }, _ct);
        await denied.AssertProblemAsync(HttpStatusCode.Forbidden);

        using var admin = await factory.AdminAsync();
        var audit = await (await admin.GetAsync($"/api/v1/audit?action=registry.register&actor=client:{clientId}&outcome=denied", _ct)).JsonAsync();
        Assert.Single(audit["items"]!.AsArray());

        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/registry/grants", new { clientId, service = other }, _ct)).StatusCode);
        await RegisterAsync(client, new { service = other, address = "127.0.0.1", port = 9000 });

        var (person, _, _) = await factory.UserClientAsync("user");
        await (await person.PostAsJsonAsync("/api/v1/registry/instances", new { service, address = "127.0.0.1", port = 9000 }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);

        // The name alone is not enough: whoever may create clients could name one after any service
        // to take its traffic. Registering as itself needs registry.register.own (role "service").
        var impostorName = Svc();
        var (impostor, _) = await factory.ServiceClientAsync(impostorName, "guest");
        await (await impostor.PostAsJsonAsync("/api/v1/registry/instances", new { service = impostorName, address = "127.0.0.1", port = 9000 }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Ttl_LapsesToCritical_HeartbeatRestores_DeregisterAfterRemoves()
    {
        var service = Svc();
        var (client, _) = await factory.ServiceClientAsync(service);
        using var admin = await factory.AdminAsync();
        var id = (await RegisterAsync(client, new { service, address = "127.0.0.1", port = 9001, check = new { ttl = "15s" }, deregisterAfter = "1m" }))["instanceId"]!.GetValue<string>();

        factory.Time.Advance(TimeSpan.FromSeconds(10));
        await Monitor.PassAsync(waitForChecks: true, _ct);
        Assert.Equal("passing", await StatusAsync(admin, id));
        factory.Time.Advance(TimeSpan.FromSeconds(6));
        await Monitor.PassAsync(waitForChecks: true, _ct);
        Assert.Equal("critical", await StatusAsync(admin, id));

        Assert.Equal(HttpStatusCode.NoContent, (await client.PutAsync($"/api/v1/registry/instances/{id}/heartbeat", null, _ct)).StatusCode);
        Assert.Equal("passing", await StatusAsync(admin, id));
        Assert.Equal(HttpStatusCode.NoContent, (await client.PutAsJsonAsync($"/api/v1/registry/instances/{id}/heartbeat", new { status = "warning", output = "disk 91%" }, _ct)).StatusCode);
        Assert.Equal("warning", await StatusAsync(admin, id));

        factory.Time.Advance(TimeSpan.FromSeconds(16));
        await Monitor.PassAsync(waitForChecks: true, _ct);
        Assert.Equal("critical", await StatusAsync(admin, id));
        factory.Time.Advance(TimeSpan.FromSeconds(61));
        using var fresh = await factory.AdminAsync();
        await Monitor.PassAsync(waitForChecks: true, _ct);
        await (await fresh.GetAsync($"/api/v1/registry/instances/{id}", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);

        var history = (await (await fresh.GetAsync($"/api/v1/registry/instances/{id}/history", _ct)).JsonAsync()).AsArray();
        Assert.Equal(["deregistered", "critical", "warning", "passing", "critical", "passing"], history.Select(h => h!["to"]!.GetValue<string>()));
    }

    [Fact]
    public async Task HttpCheck_OfARealServer_FollowsItsAnswers()
    {
        await using var server = await CheckedService.StartAsync();
        var service = Svc();
        var (client, _) = await factory.ServiceClientAsync(service);
        var id = (await RegisterAsync(client, new { service, address = "127.0.0.1", port = server.Port, check = new { http = "/health/ready", interval = "10s", timeout = "2s" } }))["instanceId"]!.GetValue<string>();
        using var admin = await factory.AdminAsync();
        Assert.Equal("critical", await StatusAsync(admin, id));

        await Monitor.PassAsync(waitForChecks: true, _ct);
        Assert.Equal("passing", await StatusAsync(admin, id));
        Assert.Equal(1, server.Checks);

        // Not due yet: no second check.
        await Monitor.PassAsync(waitForChecks: true, _ct);
        Assert.Equal(1, server.Checks);

        server.Status = 429;
        factory.Time.Advance(TimeSpan.FromSeconds(12));
        await Monitor.PassAsync(waitForChecks: true, _ct);
        Assert.Equal("warning", await StatusAsync(admin, id));

        server.Status = 503;
        factory.Time.Advance(TimeSpan.FromSeconds(12));
        await Monitor.PassAsync(waitForChecks: true, _ct);
        using var fresh = await factory.AdminAsync();
        var detail = await (await fresh.GetAsync($"/api/v1/registry/instances/{id}", _ct)).JsonAsync();
        Assert.Equal("critical", detail["status"]!.GetValue<string>());
        // Only the status class: nothing the probed server wrote (reason phrase, body) reaches the history.
        Assert.Equal("HTTP GET /health/ready: 5xx", detail["output"]!.GetValue<string>());

        server.Status = 200;
        await server.StopAsync();
        factory.Time.Advance(TimeSpan.FromSeconds(12));
        await Monitor.PassAsync(waitForChecks: true, _ct);
        Assert.Equal("critical", await StatusAsync(fresh, id));
    }

    [Fact]
    public async Task Discovery_FiltersHealthyAndTag_AndCountsByStatus()
    {
        var service = Svc();
        var (client, _) = await factory.ServiceClientAsync(service);
        await RegisterAsync(client, new { service, instanceId = service + "-a", address = "127.0.0.1", port = 9101, tags = new[] { "blue" }, check = new { ttl = "15s" } });
        await RegisterAsync(client, new { service, instanceId = service + "-b", address = "127.0.0.1", port = 9102, tags = new[] { "green" }, check = new { ttl = "15s" } });
        await RegisterAsync(client, new { service, instanceId = service + "-c", address = "127.0.0.1", port = 9103, tags = new[] { "blue" }, check = new { ttl = "15s" } });
        await client.PutAsJsonAsync($"/api/v1/registry/instances/{service}-c/heartbeat", new { status = "critical" }, _ct);
        using var admin = await factory.AdminAsync();

        var healthyBlue = (await (await admin.GetAsync($"/api/v1/registry/services/{service}/instances?healthy=true&tag=blue", _ct)).JsonAsync()).AsArray();
        Assert.Equal([service + "-a"], healthyBlue.Select(i => i!["instanceId"]!.GetValue<string>()));
        var summary = (await (await admin.GetAsync("/api/v1/registry/services", _ct)).JsonAsync()).AsArray().Single(s => s!["service"]!.GetValue<string>() == service)!;
        Assert.Equal(2, summary["passing"]!.GetValue<int>());
        Assert.Equal(1, summary["critical"]!.GetValue<int>());
        Assert.Equal(3, summary["total"]!.GetValue<int>());
    }

    [Fact]
    public async Task BlockingWatch_AnswersWhenTheServiceChanges()
    {
        var service = Svc();
        var (client, _) = await factory.ServiceClientAsync(service);
        await RegisterAsync(client, new { service, instanceId = service + "-1", address = "127.0.0.1", port = 9201, check = new { ttl = "15s" } });
        using var admin = await factory.AdminAsync();
        var first = await admin.GetAsync($"/api/v1/registry/services/{service}/instances", _ct);
        var index = long.Parse(first.Headers.GetValues("X-Fundament-Index").Single(), System.Globalization.CultureInfo.InvariantCulture);

        var watch = admin.GetAsync($"/api/v1/registry/services/{service}/instances?index={index}&wait=5m", _ct);
        await Task.Delay(100, _ct);
        Assert.False(watch.IsCompleted);
        await RegisterAsync(client, new { service, instanceId = service + "-2", address = "127.0.0.1", port = 9202, check = new { ttl = "15s" } });
        var answered = await watch.WaitAsync(TimeSpan.FromSeconds(30), _ct);
        Assert.Equal(2, (await answered.JsonAsync()).AsArray().Count);
        var next = long.Parse(answered.Headers.GetValues("X-Fundament-Index").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(next > index);

        // A status change is a change too.
        var statusWatch = admin.GetAsync($"/api/v1/registry/services/{service}/instances?index={next}&wait=5m", _ct);
        await client.PutAsJsonAsync($"/api/v1/registry/instances/{service}-1/heartbeat", new { status = "critical" }, _ct);
        var statusAnswer = await (await statusWatch.WaitAsync(TimeSpan.FromSeconds(30), _ct)).JsonAsync();
        Assert.Contains(statusAnswer.AsArray(), i => i!["status"]!.GetValue<string>() == "critical");
    }

    [Fact]
    public async Task OnlyTheOwner_HeartbeatsOrDeregisters()
    {
        var service = Svc();
        var (owner, _) = await factory.ServiceClientAsync(service);
        var (stranger, _) = await factory.ServiceClientAsync(Svc());
        var id = (await RegisterAsync(owner, new { service, address = "127.0.0.1", port = 9301, check = new { ttl = "15s" } }))["instanceId"]!.GetValue<string>();
        await (await stranger.PutAsync($"/api/v1/registry/instances/{id}/heartbeat", null, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await stranger.DeleteAsync($"/api/v1/registry/instances/{id}", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.NoContent, (await owner.DeleteAsync($"/api/v1/registry/instances/{id}", _ct)).StatusCode);
        using var admin = await factory.AdminAsync();
        Assert.Empty((await (await admin.GetAsync($"/api/v1/registry/services/{service}/instances", _ct)).JsonAsync()).AsArray());
    }

    [Fact]
    public async Task BadRegistrations_Are400()
    {
        using var admin = await factory.AdminAsync();
        async Task BadAsync(object body) => await (await admin.PostAsJsonAsync("/api/v1/registry/instances", body, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await BadAsync(new { service = "Orders!", address = "127.0.0.1", port = 80 });
        await BadAsync(new { service = "orders", address = "not a host", port = 80 });
        await BadAsync(new { service = "orders", address = "127.0.0.1", port = 70000 });
        await BadAsync(new { service = "orders", address = "127.0.0.1", port = 80, check = new { http = "/h", ttl = "10s" } });
        await BadAsync(new { service = "orders", address = "127.0.0.1", port = 80, check = new { http = "health", interval = "10s" } });
        await BadAsync(new { service = "orders", address = "127.0.0.1", port = 80, check = new { ttl = "10ms" } });
        await BadAsync(new { service = "orders", address = "127.0.0.1", port = 80, check = new { http = "/h", interval = "5s", timeout = "10s" } });
        await BadAsync(new { service = "orders", address = "127.0.0.1", port = 80, routes = new[] { new { path = "no-slash" } } });
        await BadAsync(new { service = "orders", address = "127.0.0.1", port = 80, deregisterAfter = "forever" });
    }
}

public sealed class SqliteRegistryApiTests(SqliteFundamentFactory factory) : RegistryApiTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresRegistryApiTests : RegistryApiTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresRegistryApiTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
