using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Core.Storage;
using Fundament.Events;
using Fundament.Events.Storage;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Events;

/// <summary>Durable subscriptions over $all: order, leases, competing consumers, parking and replay, gap-free delivery, access.</summary>
public abstract class SubscriptionTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static string Prefix() => $"s{Guid.NewGuid():N}"[..12];

    private static object Event(string type = "OrderPlaced") => new { id = Guid.NewGuid().ToString(), type, data = new { total = 42 } };

    private async Task<long> AppendAsync(HttpClient client, string stream, params object[] events)
    {
        var response = await client.PostAsJsonAsync($"/api/v1/streams/{stream}/events", new { expectedVersion = "any", events }, _ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.JsonAsync())["position"]!.GetValue<long>();
    }

    private async Task<JsonNode> CreateAsync(HttpClient client, object request)
    {
        var response = await client.PostAsJsonAsync("/api/v1/subscriptions", request, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_ct));
        return await response.JsonAsync();
    }

    private async Task<List<JsonNode>> PullAsync(HttpClient client, string name, int max = 10, string query = "")
    {
        var response = await client.PostAsync($"/api/v1/subscriptions/{name}/pull?max={max}{query}", null, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(_ct));
        return (await response.JsonAsync())["events"]!.AsArray().Select(e => e!).ToList();
    }

    private async Task<JsonNode> AckAsync(HttpClient client, string name, IEnumerable<JsonNode> leased)
    {
        var response = await client.PostAsJsonAsync($"/api/v1/subscriptions/{name}/ack", new { leaseIds = leased.Select(LeaseId).ToArray() }, _ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.JsonAsync();
    }

    [Fact]
    public async Task Release_GivesEventsBackAtOnce_WithoutUsingUpAnAttempt()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        var name = $"rel-{prefix}";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix }, from = "start", maxAttempts = 1 });
        await AppendAsync(admin, $"{prefix}-a", Event(), Event());

        var first = await PullAsync(admin, name);
        Assert.Equal([1, 1], first.Select(l => l["attempt"]!.GetValue<int>()));
        var released = await admin.PostAsJsonAsync($"/api/v1/subscriptions/{name}/nack", new { leaseIds = first.Select(LeaseId).ToArray(), release = true }, _ct);
        Assert.Equal(2, (await released.JsonAsync())["done"]!.GetValue<int>());

        // Back at once, together and in order, still on their first attempt (maxAttempts 1 would have parked them otherwise).
        var again = await PullAsync(admin, name);
        Assert.Equal(first.Select(Position), again.Select(Position));
        Assert.All(again, l => Assert.Equal(1, l["attempt"]!.GetValue<int>()));
        await AckAsync(admin, name, again);
        Assert.Equal(0, (await (await admin.GetAsync($"/api/v1/subscriptions/{name}", _ct)).JsonAsync())["parked"]!.GetValue<long>());
    }

    private async Task NackAsync(HttpClient client, string name, JsonNode leased, object? extra = null)
    {
        var body = new JsonObject { ["leaseIds"] = new JsonArray(LeaseId(leased)), ["reason"] = "handler threw InvalidOperationException", ["retryAfterSeconds"] = 0 };
        if (extra is not null)
        {
            foreach (var (key, value) in JsonSerializerNode(extra))
            {
                body[key] = value?.DeepClone();
            }
        }
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync($"/api/v1/subscriptions/{name}/nack", body, _ct)).StatusCode);
    }

    private static JsonObject JsonSerializerNode(object value) => System.Text.Json.JsonSerializer.SerializeToNode(value, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web))!.AsObject();

    private static string LeaseId(JsonNode leased) => leased["leaseId"]!.GetValue<string>();

    private static long Position(JsonNode leased) => leased["event"]!["position"]!.GetValue<long>();

    private async Task<JsonNode> GetAsync(HttpClient client, string name) => await (await client.GetAsync($"/api/v1/subscriptions/{name}", _ct)).JsonAsync();

    [Fact]
    public async Task CatchUp_FromTheStart_HandsOutInPositionOrder_OneBatchAtATime_AndKeepsItsCheckpoint()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        var positions = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            positions.Add(await AppendAsync(admin, $"{prefix}-{i}", Event()));
        }
        await AppendAsync(admin, $"other{prefix}", Event());
        var name = $"sub-{prefix}";
        var created = await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix }, from = "start" });
        Assert.Equal("catchup", created["mode"]!.GetValue<string>());
        Assert.True(created["lagEvents"]!.GetValue<long>() >= 3);

        var first = await PullAsync(admin, name, max: 2);
        Assert.Equal(positions.Take(2), first.Select(Position));
        Assert.All(first, e => Assert.Equal(1, e["attempt"]!.GetValue<int>()));
        // In order: nothing more while the first batch is out.
        Assert.Empty(await PullAsync(admin, name));
        Assert.Equal(2, (await AckAsync(admin, name, first))["done"]!.GetValue<int>());

        var second = await PullAsync(admin, name);
        Assert.Equal([positions[2]], second.Select(Position));
        await AckAsync(admin, name, second);
        Assert.Empty(await PullAsync(admin, name));

        var state = await GetAsync(admin, name);
        Assert.True(state["checkpoint"]!.GetValue<long>() >= positions[2]);
        Assert.Equal(0, state["lagEvents"]!.GetValue<long>());
        Assert.Equal(0, state["leased"]!.GetValue<long>());

        // Acknowledged events are never handed out again; new ones are.
        var next = await AppendAsync(admin, $"{prefix}-3", Event());
        Assert.Equal([next], (await PullAsync(admin, name)).Select(Position));
    }

    [Fact]
    public async Task FromTheEnd_OnlyNewEvents_FilteredByType()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        await AppendAsync(admin, $"{prefix}-old", Event());
        var name = $"end-{prefix}";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix, type = "OrderShipped" } });
        await AppendAsync(admin, $"{prefix}-a", Event("OrderPlaced"));
        var shipped = await AppendAsync(admin, $"{prefix}-a", Event("OrderShipped"));
        var pulled = await PullAsync(admin, name);
        Assert.Equal([shipped], pulled.Select(Position));
        Assert.Equal("OrderShipped", pulled[0]["event"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task Competing_SpreadsOverConsumers_EachEventHandedOutOnce()
    {
        using var admin = await factory.AdminAsync();
        using var second = await factory.AdminAsync();
        var prefix = Prefix();
        var name = $"comp-{prefix}";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix }, mode = "competing" });
        var appended = new List<long>();
        for (var i = 0; i < 30; i++)
        {
            appended.Add(await AppendAsync(admin, $"{prefix}-{i % 4}", Event()));
        }

        async Task<List<long>> ConsumeAsync(HttpClient client)
        {
            var handled = new List<long>();
            while (await PullAsync(client, name, max: 4) is { Count: > 0 } batch)
            {
                handled.AddRange(batch.Select(Position));
                await AckAsync(client, name, batch);
            }
            return handled;
        }
        var results = await Task.WhenAll(ConsumeAsync(admin), ConsumeAsync(second));
        var all = results.SelectMany(r => r).ToList();
        Assert.Equal(appended.Order(), all.Order());
        Assert.Equal(all.Count, all.Distinct().Count());
        var state = await GetAsync(admin, name);
        Assert.Equal(0, state["lagEvents"]!.GetValue<long>());
        Assert.Equal(appended[^1], state["checkpoint"]!.GetValue<long>());
    }

    [Fact]
    public async Task ALeaseThatRunsOut_IsHandedOutAgain_AndItsOldLeaseNoLongerAcks()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        var name = $"lease-{prefix}";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix }, mode = "competing" });
        var position = await AppendAsync(admin, $"{prefix}-a", Event());

        var first = Assert.Single(await PullAsync(admin, name, query: "&lease=5"));
        Assert.Empty(await PullAsync(admin, name));
        factory.Time.Advance(TimeSpan.FromSeconds(6));
        var again = Assert.Single(await PullAsync(admin, name));
        Assert.Equal(position, Position(again));
        Assert.Equal(2, again["attempt"]!.GetValue<int>());

        var stale = await AckAsync(admin, name, [first]);
        Assert.Equal(0, stale["done"]!.GetValue<int>());
        Assert.Equal([LeaseId(first)], stale["stale"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal(1, (await AckAsync(admin, name, [again]))["done"]!.GetValue<int>());
        Assert.Equal(0, (await GetAsync(admin, name))["leased"]!.GetValue<long>());
    }

    [Fact]
    public async Task Nacks_Retry_ThenPark_AfterMaxAttempts_AndAReplayResendsOnlyWhatWasParked_Once()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        var name = $"park-{prefix}";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix }, mode = "competing", maxAttempts = 2 });
        var failing = await AppendAsync(admin, $"{prefix}-a", Event());
        var poison = await AppendAsync(admin, $"{prefix}-b", Event());
        var fine = await AppendAsync(admin, $"{prefix}-c", Event());

        var batch = await PullAsync(admin, name);
        Assert.Equal([failing, poison, fine], batch.Select(Position));
        await AckAsync(admin, name, [batch[2]]);
        await NackAsync(admin, name, batch[0]);
        await NackAsync(admin, name, batch[1], new { park = true });

        var retry = Assert.Single(await PullAsync(admin, name));
        Assert.Equal(failing, Position(retry));
        Assert.Equal(2, retry["attempt"]!.GetValue<int>());
        await NackAsync(admin, name, retry);
        Assert.Empty(await PullAsync(admin, name));

        var parked = (await (await admin.GetAsync($"/api/v1/subscriptions/{name}/parked", _ct)).JsonAsync())["events"]!.AsArray().Select(e => e!).ToList();
        Assert.Equal([failing, poison], parked.Select(p => p["event"]!["position"]!.GetValue<long>()));
        Assert.Equal([2, 1], parked.Select(p => p["attempts"]!.GetValue<int>()));
        Assert.All(parked, p => Assert.Equal("handler threw InvalidOperationException", p["reason"]!.GetValue<string>()));
        Assert.Equal(2, (await GetAsync(admin, name))["parked"]!.GetValue<long>());
        // Parked events do not hold the checkpoint back.
        Assert.Equal(fine, (await GetAsync(admin, name))["checkpoint"]!.GetValue<long>());

        var replay = await admin.PostAsJsonAsync($"/api/v1/subscriptions/{name}/parked/replay", new { }, _ct);
        Assert.Equal(2, (await replay.JsonAsync())["replayed"]!.GetValue<int>());
        var replayAgain = await admin.PostAsJsonAsync($"/api/v1/subscriptions/{name}/parked/replay", new { }, _ct);
        Assert.Equal(0, (await replayAgain.JsonAsync())["replayed"]!.GetValue<int>());

        var redelivered = await PullAsync(admin, name);
        Assert.Equal([failing, poison], redelivered.Select(Position));
        Assert.All(redelivered, e => Assert.Equal(1, e["attempt"]!.GetValue<int>()));
        await AckAsync(admin, name, redelivered);
        Assert.Empty(await PullAsync(admin, name));
        Assert.Equal(0, (await GetAsync(admin, name))["parked"]!.GetValue<long>());

        var audit = await (await admin.GetAsync("/api/v1/audit?action=events.subscription.replay&limit=10", _ct)).JsonAsync();
        Assert.Contains(audit["items"]!.AsArray(), e => e!["target"]!.GetValue<string>() == $"subscription:{name}");
    }

    [Fact]
    public async Task APull_WaitsForTheNextAppend()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        var name = $"wait-{prefix}";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix } });
        var pull = PullAsync(admin, name, query: "&wait=20");
        var position = await AppendAsync(admin, $"{prefix}-a", Event());
        Assert.Equal([position], (await pull).Select(Position));
    }

    [Fact]
    public async Task ServerSentEvents_CarryLeasedEvents_Upcast_WithTheirPositionAsId_AndEndWhenTheSubscriptionIsReplaced()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        var name = $"sse-{prefix}";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix }, from = "start" });
        var type = $"Sse{prefix}";
        var position = await AppendAsync(admin, $"{prefix}-a", Event(type));
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/event-types/{type}/upcasts",
            new { steps = new[] { new { fromVersion = 1, operations = new[] { new { op = "rename", path = "total", to = "amount" } } } } }, _ct)).StatusCode);

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/subscriptions/{name}/stream");
        using var response = await admin.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _ct);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(_ct));
        var lines = new List<string>();
        while (lines.Count(l => l.Length == 0) == 0)
        {
            lines.Add((await reader.ReadLineAsync(_ct))!);
        }
        Assert.Contains("event: event", lines);
        Assert.Contains($"id: {position}", lines);
        var data = JsonNode.Parse(lines.Single(l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..])!;
        Assert.Equal(position, Position(data));
        Assert.Equal(42, data["event"]!["data"]!["amount"]!.GetValue<int>());
        Assert.Equal(2, data["event"]!["schemaVersion"]!.GetValue<int>());
        Assert.Equal(1, (await AckAsync(admin, name, [data]))["done"]!.GetValue<int>());

        // Deleted and created again by someone else: the open stream does not carry the new owner's events.
        var (user, userId, _) = await factory.UserClientAsync();
        using var _1 = user;
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{userId}", streamPrefix = prefix, capabilities = new[] { "read" } }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/subscriptions/{name}", _ct)).StatusCode);
        await CreateAsync(user, new { name, filter = new { streamPrefix = prefix }, from = "start" });
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        ended.CancelAfter(TimeSpan.FromSeconds(30));
        string? line;
        while ((line = await reader.ReadLineAsync(ended.Token)) is not null)
        {
            Assert.DoesNotContain($"id: {position}", line);
        }
        Assert.Single(await PullAsync(user, name));
    }

    [Fact]
    public async Task ASubscriptionIsItsCreators_AndNeedsReadOnEveryStreamItsFilterCovers_CheckedOnEveryCall()
    {
        using var admin = await factory.AdminAsync();
        var (user, userId, _) = await factory.UserClientAsync();
        using var _1 = user;
        var (stranger, _, _) = await factory.UserClientAsync();
        using var _2 = stranger;
        var prefix = Prefix();
        var grant = await (await admin.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{userId}", streamPrefix = prefix, capabilities = new[] { "read" } }, _ct)).JsonAsync();

        await (await user.PostAsJsonAsync("/api/v1/subscriptions", new { name = $"x-{prefix}", filter = new { streamPrefix = "other" } }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.PostAsJsonAsync("/api/v1/subscriptions", new { name = $"y-{prefix}" }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        var name = $"mine-{prefix}";
        await CreateAsync(user, new { name, filter = new { streamPrefix = prefix + "-" } });
        var position = await AppendAsync(admin, $"{prefix}-a", Event());

        await (await stranger.PostAsync($"/api/v1/subscriptions/{name}/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await stranger.GetAsync($"/api/v1/subscriptions/{name}/parked", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await stranger.DeleteAsync($"/api/v1/subscriptions/{name}", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.DoesNotContain((await (await stranger.GetAsync("/api/v1/subscriptions", _ct)).JsonAsync()).AsArray(), s => s!["name"]!.GetValue<string>() == name);
        Assert.Contains((await (await user.GetAsync("/api/v1/subscriptions", _ct)).JsonAsync()).AsArray(), s => s!["name"]!.GetValue<string>() == name);
        Assert.Equal([position], (await PullAsync(user, name)).Select(Position));

        // Reading the same streams does not make another principal's subscription yours.
        var (reader, readerId, _) = await factory.UserClientAsync();
        using var _3 = reader;
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{readerId}", streamPrefix = prefix, capabilities = new[] { "read" } }, _ct)).StatusCode);
        await (await reader.PostAsync($"/api/v1/subscriptions/{name}/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await reader.PostAsJsonAsync($"/api/v1/subscriptions/{name}/parked/replay", new { }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await reader.DeleteAsync($"/api/v1/subscriptions/{name}", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.DoesNotContain((await (await reader.GetAsync("/api/v1/subscriptions", _ct)).JsonAsync()).AsArray(), s => s!["name"]!.GetValue<string>() == name);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync($"/api/v1/subscriptions/{name}", _ct)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/stream-grants/{grant["id"]!.GetValue<string>()}", _ct)).StatusCode);
        await (await user.PostAsync($"/api/v1/subscriptions/{name}/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);

        var audit = await (await admin.GetAsync("/api/v1/audit?action=events.subscription.pull&limit=50", _ct)).JsonAsync();
        Assert.Contains(audit["items"]!.AsArray(), e => e!["outcome"]!.GetValue<string>() == "denied" && e["target"]!.GetValue<string>() == $"subscription:{name}");
    }

    [Theory]
    [InlineData("""{"name":"bad name"}""", "name")]
    [InlineData("""{"name":"ok","mode":"fanout"}""", "mode")]
    [InlineData("""{"name":"ok","from":"middle"}""", "from")]
    [InlineData("""{"name":"ok","from":-1}""", "from")]
    [InlineData("""{"name":"ok","maxAttempts":0}""", "maxAttempts")]
    [InlineData("""{"name":"ok","filter":{"streamPrefix":"a b"}}""", "filter.streamPrefix")]
    public async Task BadSubscriptions_Are400_AndCreateNothing(string body, string field)
    {
        using var admin = await factory.AdminAsync();
        var response = await admin.PostAsync("/api/v1/subscriptions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), _ct);
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.NotNull((await response.JsonAsync())["errors"]![field]);
        await (await admin.GetAsync("/api/v1/subscriptions/ok", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task BadPullsAndAcks_Are400_ADuplicateNameIs409_AndAnUnknownOneIs404()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        var name = $"dup-{prefix}";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix } });
        await (await admin.PostAsJsonAsync("/api/v1/subscriptions", new { name, filter = new { streamPrefix = prefix } }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.PostAsync($"/api/v1/subscriptions/{name}/pull?max=0", null, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsync($"/api/v1/subscriptions/{name}/pull?lease=0", null, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsync($"/api/v1/subscriptions/{name}/pull?wait=3600", null, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync($"/api/v1/subscriptions/{name}/ack", new { leaseIds = Array.Empty<string>() }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync($"/api/v1/subscriptions/{name}/nack", new { leaseIds = new[] { "x" }, retryAfterSeconds = -1 }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync($"/api/v1/subscriptions/{name}/parked/replay", new { positions = new[] { 0 } }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsync($"/api/v1/subscriptions/none-{prefix}/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/subscriptions/{name}", _ct)).StatusCode);
        await (await admin.GetAsync($"/api/v1/subscriptions/{name}", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Lag_IsReported_AndExportedAsMetrics()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        var name = $"lag-{prefix}";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix } });
        await AppendAsync(admin, $"{prefix}-a", Event());
        factory.Time.Advance(TimeSpan.FromSeconds(90));
        var state = await GetAsync(admin, name);
        Assert.True(state["lagEvents"]!.GetValue<long>() >= 1);
        Assert.True(state["lagSeconds"]!.GetValue<double>() >= 90);

        await factory.Services.GetRequiredService<SubscriptionMetrics>().RefreshAsync(_ct);
        var metrics = await factory.CreateClient().GetStringAsync("/metrics", _ct);
        Assert.Contains($"subscription=\"{name}\"}} 90", metrics.Split('\n').Single(l => l.StartsWith("fundament_events_subscription_lag_seconds{", StringComparison.Ordinal) && l.Contains(name, StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains(metrics.Split('\n'), l => l.StartsWith("fundament_events_subscription_lag_events{", StringComparison.Ordinal) && l.Contains($"subscription=\"{name}\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ASlowAppend_HeldOpen_IsNeverSkipped_EverySubscriberGetsEveryEventInPositionOrder()
    {
        using var admin = await factory.AdminAsync();
        var database = factory.Services.GetRequiredService<IDatabase>();
        var store = factory.Services.GetRequiredService<EventStore>();
        var prefix = Prefix();
        var catchUp = $"gap-c-{prefix}";
        var competing = $"gap-p-{prefix}";
        await CreateAsync(admin, new { name = catchUp, filter = new { streamPrefix = prefix } });
        await CreateAsync(admin, new { name = competing, filter = new { streamPrefix = prefix }, mode = "competing" });

        var release = new TaskCompletionSource();
        var holding = new TaskCompletionSource();
        var slow = Task.Run(() => database.InUnitOfWorkAsync(async () =>
        {
            var outcome = await store.AppendAsync([new StreamAppend($"{prefix}-slow", ExpectedVersion.Any, [new EventToStore(Guid.NewGuid().ToString(), "Slow", "1", null)])], "user:test", null, _ct);
            holding.SetResult();
            await release.Task;
            return outcome;
        }, _ct), _ct);
        await holding.Task;
        var later = Enumerable.Range(1, 5).Select(i => admin.PostAsJsonAsync($"/api/v1/streams/{prefix}-{i}/events", new { events = new[] { Event() } }, _ct)).ToList();

        // While the slow append is open, neither subscription may move past its position.
        var received = new Dictionary<string, List<long>> { [catchUp] = [], [competing] = [] };
        async Task DrainAsync()
        {
            foreach (var name in received.Keys)
            {
                while (await PullAsync(admin, name, max: 3) is { Count: > 0 } batch)
                {
                    received[name].AddRange(batch.Select(Position));
                    await AckAsync(admin, name, batch);
                }
            }
        }
        var during = DrainAsync();
        if (database.Dialect.Name == "postgres")
        {
            await during;
            await DrainAsync();
            Assert.All(received.Values, Assert.Empty);
        }
        // SQLite has one writer: a pull waits for the open append to end, which shows the same thing.

        release.SetResult();
        await slow;
        await during;
        Assert.All(await Task.WhenAll(later), r => Assert.Equal(HttpStatusCode.Created, r.StatusCode));
        await DrainAsync();
        foreach (var (_, positions) in received)
        {
            Assert.Equal(6, positions.Count);
            Assert.Equal(positions.Order(), positions);
            Assert.Equal(Enumerable.Range(0, 6).Select(i => positions[0] + i), positions);
        }
    }

    [Fact]
    public async Task APrincipal_HoldsAtMostMaxSubscriptions_429Beyond_AndDeletingOneFreesRoom()
    {
        using var admin = await factory.AdminAsync();
        var (user, userId, _) = await factory.UserClientAsync();
        using var _1 = user;
        var prefix = Prefix();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{userId}", streamPrefix = prefix, capabilities = new[] { "read" } }, _ct)).StatusCode);
        var limit = factory.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<EventsOptions>>().Value.MaxSubscriptionsPerPrincipal;
        for (var i = 0; i < limit - 5; i++)
        {
            await CreateAsync(user, new { name = $"{prefix}-{i}", filter = new { streamPrefix = prefix } });
        }
        // The last five places, raced for by twenty requests at once: exactly five win.
        var racing = await Task.WhenAll(Enumerable.Range(limit - 5, 20).Select(i =>
            user.PostAsJsonAsync("/api/v1/subscriptions", new { name = $"{prefix}-{i}", filter = new { streamPrefix = prefix } }, _ct)));
        Assert.Equal(5, racing.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(15, racing.Count(r => r.StatusCode == HttpStatusCode.TooManyRequests));

        var refused = await user.PostAsJsonAsync("/api/v1/subscriptions", new { name = $"{prefix}-more", filter = new { streamPrefix = prefix } }, _ct);
        await refused.AssertProblemAsync(HttpStatusCode.TooManyRequests);
        await (await admin.GetAsync($"/api/v1/subscriptions/{prefix}-more", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        // Another principal's room is its own.
        await CreateAsync(admin, new { name = $"{prefix}-admin", filter = new { streamPrefix = prefix } });

        var listed = (await (await user.GetAsync("/api/v1/subscriptions?limit=500", _ct)).JsonAsync()).AsArray();
        Assert.Equal(limit, listed.Count(l => l!["name"]!.GetValue<string>().StartsWith(prefix, StringComparison.Ordinal)));

        Assert.Equal(HttpStatusCode.NoContent, (await user.DeleteAsync($"/api/v1/subscriptions/{prefix}-0", _ct)).StatusCode);
        await CreateAsync(user, new { name = $"{prefix}-more", filter = new { streamPrefix = prefix } });
    }

    [Fact]
    public async Task ACompetingSubscription_HandsOutAtMostItsInFlightLimit_UntilSomeAreAcknowledged()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Prefix();
        await AppendAsync(admin, $"{prefix}-1", Event(), Event(), Event(), Event(), Event());
        var name = $"{prefix}-c";
        await CreateAsync(admin, new { name, filter = new { streamPrefix = prefix }, from = "start", mode = "competing" });
        var store = factory.Services.GetRequiredService<SubscriptionStore>();

        var first = await store.PullAsync(name, 10, TimeSpan.FromMinutes(1), maxInFlight: 3, _ct);
        Assert.Equal(3, first.Count);
        Assert.Empty(await store.PullAsync(name, 10, TimeSpan.FromMinutes(1), maxInFlight: 3, _ct));

        var acked = await AckAsync(admin, name, first.Take(2).Select(l => (JsonNode)new JsonObject { ["leaseId"] = l.LeaseId }));
        Assert.Equal(2, acked["done"]!.GetValue<int>());
        var second = await store.PullAsync(name, 10, TimeSpan.FromMinutes(1), maxInFlight: 3, _ct);
        Assert.Equal(2, second.Count);
        Assert.Equal(first.Concat(second).Select(l => l.Event.Position).Distinct().Count(), first.Count + second.Count);
    }
}

public sealed class SqliteSubscriptionTests(SqliteFundamentFactory factory) : SubscriptionTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresSubscriptionTests : SubscriptionTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresSubscriptionTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}

/// <summary><c>Fundament:Events:MaxInFlightPerSubscription</c> through the API, on a server configured with a small cap.</summary>
public sealed class SubscriptionInFlightOptionTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task ACompetingSubscription_PulledThroughTheApi_HoldsAtMostTheConfiguredInFlight()
    {
        await using var factory = new ConfiguredFundamentFactory([new("Fundament:Events:MaxInFlightPerSubscription", "3")]);
        using var admin = await factory.AdminAsync();
        var events = Enumerable.Range(0, 5).Select(_ => new { id = Guid.NewGuid().ToString(), type = "OrderPlaced", data = new { total = 1 } }).ToArray();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/streams/cap-1/events", new { expectedVersion = "any", events }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/subscriptions", new { name = "cap", filter = new { streamPrefix = "cap-" }, from = "start", mode = "competing" }, _ct)).StatusCode);

        async Task<JsonArray> PullAsync() => (await (await admin.PostAsync("/api/v1/subscriptions/cap/pull?max=10", null, _ct)).JsonAsync())["events"]!.AsArray();
        var first = await PullAsync();
        Assert.Equal(3, first.Count);
        Assert.Empty(await PullAsync());

        var leaseIds = first.Take(2).Select(l => l!["leaseId"]!.GetValue<string>()).ToArray();
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync("/api/v1/subscriptions/cap/ack", new { leaseIds }, _ct)).StatusCode);
        var second = await PullAsync();
        Assert.Equal(2, second.Count);
        Assert.Equal(5, first.Concat(second).Select(l => l!["event"]!["position"]!.GetValue<long>()).Distinct().Count());
    }
}
