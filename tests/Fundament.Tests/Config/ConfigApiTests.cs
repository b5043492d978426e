using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Config;

public abstract class ConfigApiTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static string Svc() => "svc-" + Guid.NewGuid().ToString("N")[..10];

    private async Task SetAsync(HttpClient client, string service, string environment, string key, object? value)
    {
        var response = await client.PutAsJsonAsync("/api/v1/config/entries", new { service, environment, key, value }, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(_ct));
    }

    private async Task<JsonNode> ResolvedAsync(HttpClient client, string service, string environment) =>
        await (await client.GetAsync($"/api/v1/config/resolved?service={service}&environment={environment}", _ct)).JsonAsync();

    [Fact]
    public async Task Resolved_OverlaysGlobalEnvironmentServiceAndServiceEnvironment()
    {
        using var admin = await factory.AdminAsync();
        var orders = Svc();
        var billing = Svc();
        var key = "k" + Guid.NewGuid().ToString("N")[..6];
        await SetAsync(admin, "*", "*", key + ".level", "global");
        await SetAsync(admin, "*", "*", key + ".onlyGlobal", 1);
        await SetAsync(admin, "*", "prod", key + ".level", "env");
        await SetAsync(admin, orders, "*", key + ".level", "service");
        await SetAsync(admin, orders, "*", key + ".limits", new { max = 5 });
        await SetAsync(admin, orders, "prod", key + ".level", "service+env");

        var ordersProd = (await ResolvedAsync(admin, orders, "prod"))["values"]!;
        Assert.Equal("service+env", ordersProd[key + ".level"]!.GetValue<string>());
        Assert.Equal(1, ordersProd[key + ".onlyGlobal"]!.GetValue<int>());
        Assert.Equal(5, ordersProd[key + ".limits"]!["max"]!.GetValue<int>());
        Assert.Equal("service", (await ResolvedAsync(admin, orders, "dev"))["values"]![key + ".level"]!.GetValue<string>());
        Assert.Equal("env", (await ResolvedAsync(admin, billing, "prod"))["values"]![key + ".level"]!.GetValue<string>());
        Assert.Equal("global", (await ResolvedAsync(admin, billing, "dev"))["values"]![key + ".level"]!.GetValue<string>());
    }

    [Fact]
    public async Task History_RecordsWhoAndWhen_AndRollbackRestoresAnEarlierValue()
    {
        using var admin = await factory.AdminAsync();
        var service = Svc();
        await SetAsync(admin, service, "*", "timeout", "1s");
        await SetAsync(admin, service, "*", "timeout", "2s");
        await SetAsync(admin, service, "*", "timeout", "3s");

        var history = (await (await admin.GetAsync($"/api/v1/config/history?service={service}&environment=*&key=timeout", _ct)).JsonAsync()).AsArray();
        Assert.Equal([3, 2, 1], history.Select(h => h!["version"]!.GetValue<int>()));
        Assert.All(history, h => Assert.StartsWith("user:", h!["changedBy"]!.GetValue<string>()));

        var rolled = await admin.PostAsJsonAsync("/api/v1/config/rollback", new { service, environment = "*", key = "timeout", version = 1 }, _ct);
        var entry = await rolled.JsonAsync();
        Assert.Equal("1s", entry["value"]!.GetValue<string>());
        Assert.Equal(4, entry["version"]!.GetValue<int>());
        Assert.Equal("1s", (await ResolvedAsync(admin, service, "prod"))["values"]!["timeout"]!.GetValue<string>());
        var latest = (await (await admin.GetAsync($"/api/v1/config/history?service={service}&environment=*&key=timeout", _ct)).JsonAsync())[0]!;
        Assert.Equal("rollback:1", latest["change"]!.GetValue<string>());
        await (await admin.PostAsJsonAsync("/api/v1/config/rollback", new { service, environment = "*", key = "timeout", version = 99 }, _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Schema_RejectsAViolatingValue_With400()
    {
        using var admin = await factory.AdminAsync();
        var prefix = "db" + Guid.NewGuid().ToString("N")[..6] + ".";
        var schema = JsonNode.Parse("""{"type":"object","required":["host"],"properties":{"host":{"type":"string"},"port":{"type":"integer","minimum":1,"maximum":65535}}}""");
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/config/schemas", new { keyPrefix = prefix, schema }, _ct)).StatusCode);
        var service = Svc();

        var bad = await admin.PutAsJsonAsync("/api/v1/config/entries", new { service, environment = "*", key = prefix + "main", value = new { port = "x" } }, _ct);
        await bad.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.NotEmpty((await bad.JsonAsync())["errors"]!["value"]!.AsArray());
        await (await admin.PutAsJsonAsync("/api/v1/config/entries", new { service, environment = "*", key = prefix + "main", value = new { host = "db", port = 70000 } }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await SetAsync(admin, service, "*", prefix + "main", new { host = "db", port = 5432 });
        await SetAsync(admin, service, "*", "other." + prefix, "not covered by the schema");
        Assert.DoesNotContain(prefix + "main", (await (await admin.GetAsync($"/api/v1/config/entries?service={service}&prefix=zzz", _ct)).JsonAsync()).ToJsonString(), StringComparison.Ordinal);

        await (await admin.PutAsJsonAsync("/api/v1/config/schemas", new { keyPrefix = "x.", schema = "not a schema" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        // A schema must not make the server fetch URLs or read files.
        var remote = JsonNode.Parse("""{"$ref":"http://169.254.169.254/latest/meta-data"}""");
        await (await admin.PutAsJsonAsync("/api/v1/config/schemas", new { keyPrefix = "y.", schema = remote }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        var file = JsonNode.Parse("""{"$ref":"/etc/passwd"}""");
        await (await admin.PutAsJsonAsync("/api/v1/config/schemas", new { keyPrefix = "z.", schema = file }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task BlockingWatch_IsHeldUntilAChangeInItsScope_AndCarriesTheIndex()
    {
        using var admin = await factory.AdminAsync();
        var service = Svc();
        await SetAsync(admin, service, "*", "feature", false);
        var first = await admin.GetAsync($"/api/v1/config/resolved?service={service}&environment=prod", _ct);
        var index = long.Parse(first.Headers.GetValues("X-Fundament-Index").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(index, (await first.JsonAsync())["index"]!.GetValue<long>());

        var watch = admin.GetAsync($"/api/v1/config/resolved?service={service}&environment=prod&index={index}&wait=5m", _ct);
        // A change in another service's scope does not answer this watch.
        await SetAsync(admin, Svc(), "*", "feature", true);
        await Task.Delay(100, _ct);
        Assert.False(watch.IsCompleted);

        await SetAsync(admin, service, "prod", "feature", true);
        var answered = await watch.WaitAsync(TimeSpan.FromSeconds(30), _ct);
        var body = await answered.JsonAsync();
        Assert.True(body["index"]!.GetValue<long>() > index);
        Assert.True(body["values"]!["feature"]!.GetValue<bool>());
    }

    [Fact]
    public async Task BlockingWatch_WithoutChange_AnswersWhenTheWaitEnds()
    {
        using var admin = await factory.AdminAsync();
        var service = Svc();
        await SetAsync(admin, service, "*", "x", 1);
        var index = (await ResolvedAsync(admin, service, "*"))["index"]!.GetValue<long>();
        var watch = admin.GetAsync($"/api/v1/config/resolved?service={service}&index={index}&wait=30s", _ct);
        await Task.Delay(100, _ct);
        Assert.False(watch.IsCompleted);
        factory.Time.Advance(TimeSpan.FromSeconds(31));
        var answered = await (await watch.WaitAsync(TimeSpan.FromSeconds(30), _ct)).JsonAsync();
        Assert.Equal(index, answered["index"]!.GetValue<long>());
    }

    [Fact]
    public async Task Delete_RemovesTheKey_AndMovesTheIndex()
    {
        using var admin = await factory.AdminAsync();
        var service = Svc();
        await SetAsync(admin, service, "*", "gone", "soon");
        var before = (await ResolvedAsync(admin, service, "*"))["index"]!.GetValue<long>();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/config/entries?service={service}&environment=*&key=gone", _ct)).StatusCode);
        var after = await ResolvedAsync(admin, service, "*");
        Assert.True(after["index"]!.GetValue<long>() > before);
        Assert.Null(after["values"]!["gone"]);
        await (await admin.DeleteAsync($"/api/v1/config/entries?service={service}&environment=*&key=gone", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Permissions_ReadersReadButDoNotWrite_GuestsNeither()
    {
        using var admin = await factory.AdminAsync();
        var role = Api.UniqueName("cfgreader").ToLowerInvariant();
        await admin.PostAsJsonAsync("/api/v1/roles", new { name = role, permissions = new[] { "config.read" } }, _ct);
        var (reader, _, _) = await factory.UserClientAsync(role);
        var (guest, _, _) = await factory.UserClientAsync("guest");
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync("/api/v1/config/resolved?service=any", _ct)).StatusCode);
        await (await reader.PutAsJsonAsync("/api/v1/config/entries", new { service = "*", environment = "*", key = "k", value = 1 }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await guest.GetAsync("/api/v1/config/resolved?service=any", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_service_client_with_config_read_own_reads_only_its_own_services_configuration()
    {
        using var admin = await factory.AdminAsync();
        var orders = Api.UniqueName("orders").ToLowerInvariant();
        var payments = Api.UniqueName("payments").ToLowerInvariant();
        (await admin.PutAsJsonAsync("/api/v1/config/entries", new { service = orders, environment = "*", key = "db.pool", value = 10 }, _ct)).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/config/entries", new { service = payments, environment = "*", key = "psp.endpoint", value = "https://psp" }, _ct)).EnsureSuccessStatusCode();
        (await admin.PutAsJsonAsync("/api/v1/config/entries", new { service = "*", environment = "*", key = "log.level", value = "info" }, _ct)).EnsureSuccessStatusCode();

        // Without config.read.own, a name alone opens nothing (whoever may create clients could pick any name).
        var (nameOnly, _) = await factory.ServiceClientAsync(payments, "guest");
        await (await nameOnly.GetAsync($"/api/v1/config/resolved?service={payments}", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);

        // With it: its own service, with the global values overlaid, and nothing else.
        var (client, _) = await factory.ServiceClientAsync(orders, "service");
        var own = await (await client.GetAsync($"/api/v1/config/resolved?service={orders}&environment=prod", _ct)).JsonAsync();
        Assert.Equal(10, own["values"]!["db.pool"]!.GetValue<int>());
        Assert.Equal("info", own["values"]!["log.level"]!.GetValue<string>());
        await (await client.GetAsync($"/api/v1/config/resolved?service={payments}", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await client.GetAsync("/api/v1/config/resolved?service=*", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await client.GetAsync($"/api/v1/config/entries?service={payments}", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await client.GetAsync($"/api/v1/config/history?service={orders}&environment=*&key=db.pool", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);

        // A client granted config.read (an operator tool) reads any service.
        var role = Api.UniqueName("cfgreader").ToLowerInvariant();
        (await admin.PostAsJsonAsync("/api/v1/roles", new { name = role, permissions = new[] { "config.read" } }, _ct)).EnsureSuccessStatusCode();
        var (tool, _) = await factory.ServiceClientAsync(Api.UniqueName("tool").ToLowerInvariant(), role);
        var other = await (await tool.GetAsync($"/api/v1/config/resolved?service={payments}", _ct)).JsonAsync();
        Assert.Equal("https://psp", other["values"]!["psp.endpoint"]!.GetValue<string>());
    }

    [Fact]
    public async Task BadInput_Is400()
    {
        using var admin = await factory.AdminAsync();
        await (await admin.PutAsJsonAsync("/api/v1/config/entries", new { service = "Bad Name", environment = "*", key = "k", value = 1 }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PutAsJsonAsync("/api/v1/config/entries", new { service = "ok", environment = "*", key = "bad key!", value = 1 }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PutAsJsonAsync("/api/v1/config/entries", new { service = "ok", environment = "*", key = "k" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync("/api/v1/config/resolved?service=ok&index=1&wait=forever", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync("/api/v1/config/resolved?service=ok&index=abc", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
    }
}

public sealed class SqliteConfigApiTests(SqliteFundamentFactory factory) : ConfigApiTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresConfigApiTests : ConfigApiTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresConfigApiTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
