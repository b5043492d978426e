using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Events;

/// <summary>Snapshots (save, read from, only forward, access) and declarative upcasts (applied on every read path, dry run, access).</summary>
public abstract class SnapshotAndUpcastTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static string Stream(string kind = "order") => $"{kind}-{Guid.NewGuid():N}";

    private static object Event(string type, object data, int? schemaVersion = null) =>
        new { id = Guid.NewGuid().ToString(), type, data, schemaVersion };

    private async Task<JsonNode> AppendAsync(HttpClient client, string stream, params object[] events)
    {
        var response = await client.PostAsJsonAsync($"/api/v1/streams/{stream}/events", new { expectedVersion = "any", events }, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_ct));
        return await response.JsonAsync();
    }

    private async Task<HttpResponseMessage> SnapshotAsync(HttpClient client, string stream, long? version, object? data) =>
        await client.PutAsJsonAsync($"/api/v1/streams/{stream}/snapshot", new { version, data }, _ct);

    private async Task<JsonArray> ReadAsync(HttpClient client, string path) =>
        (await (await client.GetAsync(path, _ct)).JsonAsync())["events"]!.AsArray();

    [Fact]
    public async Task ASnapshot_AtAVersionTheStreamReached_IsWhereAReadFromSnapshotStarts()
    {
        using var admin = await factory.AdminAsync();
        var stream = Stream();
        await AppendAsync(admin, stream, Event("ItemAdded", new { sku = "A" }), Event("ItemAdded", new { sku = "B" }), Event("ItemAdded", new { sku = "C" }));

        // No snapshot yet: a read from the snapshot is the whole stream.
        var plain = await (await admin.GetAsync($"/api/v1/streams/{stream}/events?fromSnapshot=true", _ct)).JsonAsync();
        Assert.Null(plain["snapshot"]);
        Assert.Equal(3, plain["events"]!.AsArray().Count);
        await (await admin.GetAsync($"/api/v1/streams/{stream}/snapshot", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);

        var saved = await SnapshotAsync(admin, stream, 1, new { skus = new[] { "A", "B" } });
        Assert.Equal(HttpStatusCode.OK, saved.StatusCode);
        Assert.Equal(1, (await saved.JsonAsync())["version"]!.GetValue<long>());

        var page = await (await admin.GetAsync($"/api/v1/streams/{stream}/events?fromSnapshot=true", _ct)).JsonAsync();
        Assert.Equal(1, page["snapshot"]!["version"]!.GetValue<long>());
        Assert.Equal(["A", "B"], page["snapshot"]!["data"]!["skus"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal([2L], page["events"]!.AsArray().Select(e => e!["version"]!.GetValue<long>()));
        Assert.Equal("C", page["events"]![0]!["data"]!["sku"]!.GetValue<string>());

        // At the head: the snapshot and nothing after it.
        Assert.Equal(HttpStatusCode.OK, (await SnapshotAsync(admin, stream, 2, new { skus = new[] { "A", "B", "C" } })).StatusCode);
        var atHead = await (await admin.GetAsync($"/api/v1/streams/{stream}/events?fromSnapshot=true", _ct)).JsonAsync();
        Assert.Equal(2, atHead["snapshot"]!["version"]!.GetValue<long>());
        Assert.Empty(atHead["events"]!.AsArray());
        Assert.Equal(2, (await (await admin.GetAsync($"/api/v1/streams/{stream}/snapshot", _ct)).JsonAsync())["version"]!.GetValue<long>());
    }

    [Fact]
    public async Task Snapshots_OnlyMoveForward_AndOnlyToVersionsTheStreamHas_ChangingNothingWhenRefused()
    {
        using var admin = await factory.AdminAsync();
        var stream = Stream();
        await AppendAsync(admin, stream, Event("A", new { }), Event("B", new { }));
        Assert.Equal(HttpStatusCode.OK, (await SnapshotAsync(admin, stream, 1, new { state = "at 1" })).StatusCode);

        var beyond = await SnapshotAsync(admin, stream, 7, new { state = "at 7" });
        await beyond.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Equal(1, (await beyond.JsonAsync())["actualVersion"]!.GetValue<long>());
        var older = await SnapshotAsync(admin, stream, 0, new { state = "at 0" });
        await older.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Equal(1, (await older.JsonAsync())["snapshotVersion"]!.GetValue<long>());
        await (await SnapshotAsync(admin, Stream(), 0, new { })).AssertProblemAsync(HttpStatusCode.NotFound);

        // Bad input: 400, nothing saved.
        await (await SnapshotAsync(admin, stream, null, new { })).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await SnapshotAsync(admin, stream, -1, new { })).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PutAsJsonAsync($"/api/v1/streams/{stream}/snapshot", new { version = 1 }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await SnapshotAsync(admin, stream, 1, new { big = new string('x', 600_000) })).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await SnapshotAsync(admin, "$all", 1, new { })).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync($"/api/v1/streams/{stream}/events?fromSnapshot=true&from=0", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync($"/api/v1/streams/{stream}/events?fromSnapshot=true&direction=backward", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync("/api/v1/streams/$all/events?fromSnapshot=true", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);

        var kept = await (await admin.GetAsync($"/api/v1/streams/{stream}/snapshot", _ct)).JsonAsync();
        Assert.Equal(1, kept["version"]!.GetValue<long>());
        Assert.Equal("at 1", kept["data"]!["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task SavingASnapshot_NeedsAppend_ReadingItNeedsRead_AndRefusalsAreAudited()
    {
        using var admin = await factory.AdminAsync();
        var (reader, readerId, _) = await factory.UserClientAsync();
        using var _1 = reader;
        var prefix = $"snap{Guid.NewGuid():N}"[..14];
        var stream = $"{prefix}-1";
        await AppendAsync(admin, stream, Event("A", new { }));
        Assert.Equal(HttpStatusCode.OK, (await SnapshotAsync(admin, stream, 0, new { by = "admin" })).StatusCode);

        await (await reader.GetAsync($"/api/v1/streams/{stream}/snapshot", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{readerId}", streamPrefix = prefix, capabilities = new[] { "read" } }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync($"/api/v1/streams/{stream}/snapshot", _ct)).StatusCode);
        await (await SnapshotAsync(reader, stream, 0, new { by = "reader" })).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Equal("admin", (await (await admin.GetAsync($"/api/v1/streams/{stream}/snapshot", _ct)).JsonAsync())["data"]!["by"]!.GetValue<string>());

        var audit = (await (await admin.GetAsync($"/api/v1/audit?action=events.snapshot&target=stream:{stream}", _ct)).JsonAsync())["items"]!.AsArray();
        Assert.Equal(["denied", "success"], audit.Select(e => e!["outcome"]!.GetValue<string>()).Order());
    }

    [Fact]
    public async Task SnapshotBytes_CountAgainstTheWritersStoredBytes_AReplacedSnapshotCountingBack()
    {
        using var admin = await factory.AdminAsync();
        var (user, userId, _) = await factory.UserClientAsync();
        using var _1 = user;
        var prefix = $"quota{Guid.NewGuid():N}"[..14];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{userId}", streamPrefix = prefix, capabilities = new[] { "read", "append" } }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/quotas/users/{userId}/storedBytes", new { limit = 10_000, unlimited = false }, _ct)).StatusCode);
        await AppendAsync(user, $"{prefix}-1", Event("A", new { }));
        await AppendAsync(user, $"{prefix}-2", Event("A", new { }));

        // Sent unescaped, 6,002 bytes of UTF-8 in 3,002 characters: counted as bytes.
        async Task<HttpResponseMessage> SnapshotTextAsync(string stream, int characters)
        {
            using var content = new StringContent($$"""{"version":0,"data":"{{new string('é', characters)}}"}""", System.Text.Encoding.UTF8, "application/json");
            return await user.PutAsync($"/api/v1/streams/{stream}/snapshot", content, _ct);
        }
        Assert.Equal(HttpStatusCode.OK, (await SnapshotTextAsync($"{prefix}-1", 3_000)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SnapshotTextAsync($"{prefix}-1", 3_500)).StatusCode); // replaces its own: 7,002 bytes in all
        var refused = await SnapshotTextAsync($"{prefix}-2", 3_000);
        await refused.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge);
        await (await user.GetAsync($"/api/v1/streams/{prefix}-2/snapshot", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        var quota = (await (await user.GetAsync("/api/v1/me/quotas", _ct)).JsonAsync()).AsArray().Single(q => q!["name"]!.GetValue<string>() == "storedBytes");
        Assert.Equal(7_002, quota!["used"]!.GetValue<long>());
    }

    [Fact]
    public async Task AnEventAnUpcastCannotRewrite_IsServedAsStored_NeverA500()
    {
        using var admin = await factory.AdminAsync();
        var type = $"Dup{Guid.NewGuid():N}"[..20];
        var stream = Stream();
        // Duplicate keys: accepted on append (any JSON value), but no JSON object model can rewrite them.
        var body = $$$"""{"expectedVersion":"any","events":[{"id":"{{{Guid.NewGuid()}}}","type":"{{{type}}}","data":{"customer":"a","customer":"b"}},{"id":"{{{Guid.NewGuid()}}}","type":"{{{type}}}","data":{"customer":"c"}}]}""";
        using (var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"))
        {
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync($"/api/v1/streams/{stream}/events", content, _ct)).StatusCode);
        }
        var upcasts = new { steps = new[] { new { fromVersion = 1, operations = new object[] { new { op = "rename", path = "customer", to = "customerId" }, new { op = "default", path = "note", value = (string?)null } } } } };
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/event-types/{type}/upcasts", upcasts, _ct)).StatusCode);

        var events = await ReadAsync(admin, $"/api/v1/streams/{stream}/events");
        Assert.Equal([1, 2], events.Select(e => e!["schemaVersion"]!.GetValue<int>()));
        Assert.Equal("""{"customerId":"c","note":null}""", events[1]!["data"]!.ToJsonString());
        var report = await (await admin.PostAsJsonAsync($"/api/v1/event-types/{type}/upcasts/dry-run", upcasts, _ct)).JsonAsync();
        Assert.Equal(1, report["failed"]!.GetValue<long>());
        Assert.Equal(1, report["upcast"]!.GetValue<long>());
    }

    private static object OrderPlacedUpcasts(bool optionalRename = false) => new
    {
        steps = new object[]
        {
            new
            {
                fromVersion = 1,
                operations = new object[]
                {
                    new { op = "rename", path = "customer", to = "customerId", optional = optionalRename },
                    new { op = "default", path = "currency", value = "EUR" },
                    new { op = "drop", path = "legacy" },
                },
            },
            new { fromVersion = 2, operations = new object[] { new { op = "move", path = "total", to = "amount.value" } } },
        },
    };

    [Fact]
    public async Task Upcasts_BringOldEventsToTheCurrentShape_OnStreamReads_All_Pulls_AndParkedLists()
    {
        using var admin = await factory.AdminAsync();
        var type = $"OrderPlaced{Guid.NewGuid():N}"[..24];
        var stream = Stream();
        await AppendAsync(admin, stream,
            Event(type, new { customer = "c-1", total = 5, legacy = true }),
            Event(type, new { customerId = "c-2", currency = "USD", total = 7 }, schemaVersion: 2),
            Event(type, new { customerId = "c-3", currency = "GBP", amount = new { value = 9 } }, schemaVersion: 3),
            Event("Other", new { customer = "untouched" }));
        var subscription = $"up{Guid.NewGuid():N}"[..16];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/subscriptions", new { name = subscription, filter = new { streamPrefix = stream }, from = "start" }, _ct)).StatusCode);

        var saved = await admin.PutAsJsonAsync($"/api/v1/event-types/{type}/upcasts", OrderPlacedUpcasts(), _ct);
        Assert.True(saved.StatusCode == HttpStatusCode.OK, await saved.Content.ReadAsStringAsync(_ct));
        Assert.Equal(3, (await saved.JsonAsync())["currentVersion"]!.GetValue<int>());
        Assert.Equal(3, (await (await admin.GetAsync($"/api/v1/event-types/{type}/upcasts", _ct)).JsonAsync())["currentVersion"]!.GetValue<int>());

        void AssertCurrent(JsonArray events)
        {
            Assert.Equal(4, events.Count);
            Assert.All(events.Take(3), e => Assert.Equal(3, e!["schemaVersion"]!.GetValue<int>()));
            Assert.Equal("""{"customerId":"c-1","currency":"EUR","amount":{"value":5}}""", events[0]!["data"]!.ToJsonString());
            Assert.Equal("""{"customerId":"c-2","currency":"USD","amount":{"value":7}}""", events[1]!["data"]!.ToJsonString());
            Assert.Equal("""{"customerId":"c-3","currency":"GBP","amount":{"value":9}}""", events[2]!["data"]!.ToJsonString());
            Assert.Equal(1, events[3]!["schemaVersion"]!.GetValue<int>());
            Assert.Equal("untouched", events[3]!["data"]!["customer"]!.GetValue<string>());
        }
        AssertCurrent(await ReadAsync(admin, $"/api/v1/streams/{stream}/events"));
        AssertCurrent(await ReadAsync(admin, $"/api/v1/streams/$all/events?streamPrefix={stream}"));

        var pulled = (await (await admin.PostAsync($"/api/v1/subscriptions/{subscription}/pull?max=10", null, _ct)).JsonAsync())["events"]!.AsArray();
        AssertCurrent(new JsonArray(pulled.Select(p => p!["event"]!.DeepClone()).ToArray()));
        var leaseIds = pulled.Select(p => p!["leaseId"]!.GetValue<string>()).ToArray();
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync($"/api/v1/subscriptions/{subscription}/nack", new { leaseIds, reason = "test", park = true }, _ct)).StatusCode);
        var parked = (await (await admin.GetAsync($"/api/v1/subscriptions/{subscription}/parked", _ct)).JsonAsync())["events"]!.AsArray();
        AssertCurrent(new JsonArray(parked.Select(p => p!["event"]!.DeepClone()).ToArray()));

        // Removing the upcasts serves what is stored.
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/event-types/{type}/upcasts", _ct)).StatusCode);
        var stored = await ReadAsync(admin, $"/api/v1/streams/{stream}/events");
        Assert.Equal([1, 2, 3, 1], stored.Select(e => e!["schemaVersion"]!.GetValue<int>()));
        Assert.Equal("c-1", stored[0]!["data"]!["customer"]!.GetValue<string>());
        await (await admin.GetAsync($"/api/v1/event-types/{type}/upcasts", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task TheDryRun_ReportsEveryEventAnUpcastFailsOn_AndChangesNothing()
    {
        using var admin = await factory.AdminAsync();
        var type = $"OrderPlaced{Guid.NewGuid():N}"[..24];
        var stream = Stream();
        var positions = new List<long>();
        positions.Add((await AppendAsync(admin, stream, Event(type, new { customer = "c-1", total = 5 })))["position"]!.GetValue<long>());
        positions.Add((await AppendAsync(admin, stream, Event(type, new { total = 6 })))["position"]!.GetValue<long>()); // no customer
        positions.Add((await AppendAsync(admin, stream, Event(type, new { customer = "c-3", total = 7, amount = 1 })))["position"]!.GetValue<long>()); // amount in the way
        positions.Add((await AppendAsync(admin, stream, Event(type, "not an object")))["position"]!.GetValue<long>());
        await AppendAsync(admin, stream, Event(type, new { customerId = "c-5", amount = new { value = 1 } }, schemaVersion: 3));

        var response = await admin.PostAsJsonAsync($"/api/v1/event-types/{type}/upcasts/dry-run", OrderPlacedUpcasts(), _ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(_ct));
        var report = await response.JsonAsync();
        Assert.Equal(5, report["checked"]!.GetValue<long>());
        Assert.Equal(1, report["upcast"]!.GetValue<long>());
        Assert.Equal(3, report["failed"]!.GetValue<long>());
        Assert.True(report["complete"]!.GetValue<bool>());
        var failures = report["failures"]!.AsArray();
        Assert.Equal(positions.Skip(1), failures.Select(f => f!["position"]!.GetValue<long>()));
        Assert.Contains("'customer' is missing", failures[0]!["error"]!.GetValue<string>());
        Assert.Contains("'amount' is a number, not an object", failures[1]!["error"]!.GetValue<string>());
        Assert.Contains("not an object", failures[2]!["error"]!.GetValue<string>());

        // optional: events without customer pass; the others still fail.
        var relaxed = await (await admin.PostAsJsonAsync($"/api/v1/event-types/{type}/upcasts/dry-run", OrderPlacedUpcasts(optionalRename: true), _ct)).JsonAsync();
        Assert.Equal(2, relaxed["failed"]!.GetValue<long>());

        // The dry run saved nothing.
        await (await admin.GetAsync($"/api/v1/event-types/{type}/upcasts", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);

        // Saved anyway: an event that cannot be upcast is served as stored, at its own version.
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/event-types/{type}/upcasts", OrderPlacedUpcasts(), _ct)).StatusCode);
        var events = await ReadAsync(admin, $"/api/v1/streams/{stream}/events");
        Assert.Equal([3, 1, 1, 1, 3], events.Select(e => e!["schemaVersion"]!.GetValue<int>()));
        Assert.Equal(6, events[1]!["data"]!["total"]!.GetValue<int>());
    }

    [Fact]
    public async Task SettingUpcasts_AndTheDryRun_NeedEventsAdmin_AndBadStepsAre400()
    {
        using var admin = await factory.AdminAsync();
        var (user, _, _) = await factory.UserClientAsync();
        using var _1 = user;
        var type = $"T{Guid.NewGuid():N}";

        await (await user.PutAsJsonAsync($"/api/v1/event-types/{type}/upcasts", OrderPlacedUpcasts(), _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.PostAsJsonAsync($"/api/v1/event-types/{type}/upcasts/dry-run", OrderPlacedUpcasts(), _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.DeleteAsync($"/api/v1/event-types/{type}/upcasts", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);

        object Steps(params object[] operations) => new { steps = new object[] { new { fromVersion = 1, operations } } };
        foreach (var bad in new object[]
        {
            new { steps = Array.Empty<object>() },
            new { steps = new object[] { new { fromVersion = 2, operations = new object[] { new { op = "drop", path = "a" } } } } },
            Steps(new { op = "replace", path = "a" }),
            Steps(new { op = "rename", path = "a.b", to = "c.d" }),
            Steps(new { op = "rename", path = "a", to = "a" }),
            Steps(new { op = "move", path = "a", to = "a.b" }),
            Steps(new { op = "drop", path = "a..b" }),
            Steps(new { op = "drop", path = string.Join('.', Enumerable.Repeat("p", 17)) }),
        })
        {
            await (await admin.PutAsJsonAsync($"/api/v1/event-types/{type}/upcasts", bad, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
            await (await admin.PostAsJsonAsync($"/api/v1/event-types/{type}/upcasts/dry-run", bad, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        }
        await (await admin.PutAsJsonAsync("/api/v1/event-types/a%20b/upcasts", OrderPlacedUpcasts(), _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync($"/api/v1/event-types/{type}/upcasts", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);

        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/event-types/{type}/upcasts", OrderPlacedUpcasts(), _ct)).StatusCode);
        await (await user.GetAsync($"/api/v1/event-types/{type}/upcasts", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden); // other tenants' data shapes
        var audit = (await (await admin.GetAsync($"/api/v1/audit?action=events.upcasts.save&target=event-type:{type}", _ct)).JsonAsync())["items"]!.AsArray();
        Assert.Single(audit);
    }
}

public sealed class SqliteSnapshotAndUpcastTests(SqliteFundamentFactory factory) : SnapshotAndUpcastTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresSnapshotAndUpcastTests : SnapshotAndUpcastTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresSnapshotAndUpcastTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
