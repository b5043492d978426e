using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Core.Storage;
using Fundament.Events.Storage;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Events;

public abstract class EventStoreTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static string Stream(string kind = "order") => $"{kind}-{Guid.NewGuid():N}";

    private static object Event(string type = "OrderPlaced", object? data = null, string? id = null) =>
        new { id = id ?? Guid.NewGuid().ToString(), type, data = data ?? new { total = 42 } };

    private async Task<HttpResponseMessage> AppendAsync(HttpClient client, string stream, object expectedVersion, params object[] events) =>
        await client.PostAsJsonAsync($"/api/v1/streams/{stream}/events", new { expectedVersion, events }, _ct);

    [Fact]
    public async Task Append_ThenRead_ForwardAndBackward_WithVersionsFromZero()
    {
        using var admin = await factory.AdminAsync();
        var stream = Stream();

        var first = await AppendAsync(admin, stream, "no_stream", Event("OrderPlaced"), Event("ItemAdded", new { sku = "A-1" }));
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var written = await first.JsonAsync();
        Assert.Equal(0, written["fromVersion"]!.GetValue<long>());
        Assert.Equal(1, written["toVersion"]!.GetValue<long>());
        Assert.Equal(HttpStatusCode.Created, (await AppendAsync(admin, stream, 1, Event("OrderShipped"))).StatusCode);

        var forward = (await (await admin.GetAsync($"/api/v1/streams/{stream}/events", _ct)).JsonAsync())["events"]!.AsArray();
        Assert.Equal(["OrderPlaced", "ItemAdded", "OrderShipped"], forward.Select(e => e!["type"]!.GetValue<string>()));
        Assert.Equal([0L, 1L, 2L], forward.Select(e => e!["version"]!.GetValue<long>()));
        Assert.Equal("A-1", forward[1]!["data"]!["sku"]!.GetValue<string>());
        var positions = forward.Select(e => e!["position"]!.GetValue<long>()).ToList();
        Assert.Equal(positions.Order(), positions);

        var backward = (await (await admin.GetAsync($"/api/v1/streams/{stream}/events?direction=backward&limit=2", _ct)).JsonAsync());
        Assert.Equal([2L, 1L], backward["events"]!.AsArray().Select(e => e!["version"]!.GetValue<long>()));
        Assert.Equal(0, backward["next"]!.GetValue<long>());

        await (await admin.GetAsync($"/api/v1/streams/{Stream()}/events", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task AWrongExpectedVersion_Is409_WithTheActualVersion_AndWritesNothing()
    {
        using var admin = await factory.AdminAsync();
        var stream = Stream();
        await AppendAsync(admin, stream, "any", Event(), Event());

        var stale = await AppendAsync(admin, stream, 0, Event("Late"));
        await stale.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Equal(1, (await stale.JsonAsync())["actualVersion"]!.GetValue<long>());
        await (await AppendAsync(admin, stream, "no_stream", Event("Again"))).AssertProblemAsync(HttpStatusCode.Conflict);
        var missing = await AppendAsync(admin, Stream(), "exists", Event());
        await missing.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Equal(-1, (await missing.JsonAsync())["actualVersion"]!.GetValue<long>());

        var events = (await (await admin.GetAsync($"/api/v1/streams/{stream}/events", _ct)).JsonAsync())["events"]!.AsArray();
        Assert.Equal(2, events.Count);
    }

    [Fact]
    public async Task ResendingTheSameEventIds_Is200_WithTheFirstResult_AndAppendsNothing()
    {
        using var admin = await factory.AdminAsync();
        var stream = Stream();
        var a = Event("A");
        var b = Event("B");
        var first = await (await AppendAsync(admin, stream, "no_stream", a, b)).JsonAsync();

        // A client that timed out retries: same ids, even with an expected version that no longer holds.
        var retry = await AppendAsync(admin, stream, "no_stream", a, b);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        var again = await retry.JsonAsync();
        Assert.Equal(first.ToJsonString(), again.ToJsonString());

        // Reusing one id beside a new one is not a retry.
        await (await AppendAsync(admin, stream, "any", a, Event("C"))).AssertProblemAsync(HttpStatusCode.Conflict);
        var events = (await (await admin.GetAsync($"/api/v1/streams/{stream}/events", _ct)).JsonAsync())["events"]!.AsArray();
        Assert.Equal(["A", "B"], events.Select(e => e!["type"]!.GetValue<string>()));
    }

    [Fact]
    public async Task AMultiStreamAppend_IsAllOrNothing()
    {
        using var admin = await factory.AdminAsync();
        var order = Stream("order");
        var stock = Stream("stock");
        await AppendAsync(admin, stock, "no_stream", Event("Stocked"));

        // The stock stream is not new any more: the whole append is refused, the order stream included.
        var refused = await admin.PostAsJsonAsync("/api/v1/streams/events", new
        {
            appends = new object[]
            {
                new { stream = order, expectedVersion = "no_stream", events = new[] { Event("OrderPlaced") } },
                new { stream = stock, expectedVersion = "no_stream", events = new[] { Event("Reserved") } },
            },
        }, _ct);
        await refused.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Equal(stock, (await refused.JsonAsync())["stream"]!.GetValue<string>());
        await (await admin.GetAsync($"/api/v1/streams/{order}/events", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);

        var accepted = await admin.PostAsJsonAsync("/api/v1/streams/events", new
        {
            appends = new object[]
            {
                new { stream = order, expectedVersion = "no_stream", events = new[] { Event("OrderPlaced") } },
                new { stream = stock, expectedVersion = 0, events = new[] { Event("Reserved") } },
            },
        }, _ct);
        Assert.Equal(HttpStatusCode.Created, accepted.StatusCode);
        var results = (await accepted.JsonAsync())["results"]!.AsArray();
        Assert.Equal([0L, 1L], results.Select(r => r!["toVersion"]!.GetValue<long>()));
        Assert.Equal(results[0]!["position"]!.GetValue<long>() + 1, results[1]!["position"]!.GetValue<long>());
    }

    [Fact]
    public async Task All_ReadsEveryStreamInPositionOrder_AfterAPosition_WithFilters()
    {
        using var admin = await factory.AdminAsync();
        var tenant = "t" + Guid.NewGuid().ToString("N")[..8];
        var one = $"{tenant}-order-1";
        var two = $"{tenant}-order-2";
        var start = (await (await AppendAsync(admin, one, "any", Event("OrderPlaced"))).JsonAsync())["position"]!.GetValue<long>();
        await AppendAsync(admin, two, "any", Event("OrderPlaced"), Event("OrderPaid"));
        await AppendAsync(admin, Stream("other"), "any", Event("OrderPaid"));
        await AppendAsync(admin, one, "any", Event("OrderPaid"));

        var page = await (await admin.GetAsync($"/api/v1/streams/$all/events?fromPosition={start - 1}&streamPrefix={tenant}-&limit=10", _ct)).JsonAsync();
        var events = page["events"]!.AsArray();
        Assert.Equal([one, two, two, one], events.Select(e => e!["stream"]!.GetValue<string>()));
        var positions = events.Select(e => e!["position"]!.GetValue<long>()).ToList();
        Assert.Equal(positions.Order(), positions);
        Assert.Null(page["next"]);

        var paid = (await (await admin.GetAsync($"/api/v1/streams/$all/events?fromPosition={start}&streamPrefix={tenant}-&type=OrderPaid", _ct)).JsonAsync())["events"]!.AsArray();
        Assert.Equal([two, one], paid.Select(e => e!["stream"]!.GetValue<string>()));
        var afterFirst = (await (await admin.GetAsync($"/api/v1/streams/$all/events?fromPosition={start}&streamPrefix={tenant}-&limit=1", _ct)).JsonAsync());
        Assert.Equal(positions[1], afterFirst["next"]!.GetValue<long>());
    }

    [Fact]
    public async Task Grants_ByStreamPrefix_DecideWhoReadsAndAppends_AndRefusalsAreAudited()
    {
        using var admin = await factory.AdminAsync();
        var (user, userId, _) = await factory.UserClientAsync();
        using var _1 = user;
        var mine = $"u{Guid.NewGuid():N}"[..12];
        var stream = $"{mine}-cart";

        await (await AppendAsync(user, stream, "any", Event())).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.GetAsync($"/api/v1/streams/{stream}/events", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{userId}", streamPrefix = "", capabilities = new[] { "read", "append" } }, _ct))
            .AssertProblemAsync(HttpStatusCode.Forbidden);

        var grant = await admin.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{userId}", streamPrefix = mine + "-", capabilities = new[] { "read", "append" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, grant.StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await AppendAsync(user, stream, "any", Event())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await user.GetAsync($"/api/v1/streams/{stream}/events", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await user.GetAsync($"/api/v1/streams/$all/events?streamPrefix={mine}-c", _ct)).StatusCode);
        // Outside the prefix, and $all beyond it, stay closed; a multi-stream append touching one foreign stream writes nothing.
        await (await AppendAsync(user, Stream(), "any", Event())).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.GetAsync("/api/v1/streams/$all/events", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await user.GetAsync($"/api/v1/streams/$all/events?streamPrefix={mine[..4]}", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        var foreign = Stream();
        await (await user.PostAsJsonAsync("/api/v1/streams/events", new
        {
            appends = new object[]
            {
                new { stream, expectedVersion = "any", events = new[] { Event() } },
                new { stream = foreign, expectedVersion = "any", events = new[] { Event() } },
            },
        }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Single((await (await admin.GetAsync($"/api/v1/streams/{stream}/events", _ct)).JsonAsync())["events"]!.AsArray());

        var audit = await (await admin.GetAsync($"/api/v1/audit?action=events.append&limit=200", _ct)).JsonAsync();
        var entries = audit["items"]!.AsArray().Select(e => e!).ToList();
        Assert.Contains(entries, e => e["outcome"]!.GetValue<string>() == "denied" && e["target"]!.GetValue<string>() == $"stream:{foreign}");
        Assert.Contains(entries, e => e["outcome"]!.GetValue<string>() == "success" && e["target"]!.GetValue<string>() == $"stream:{stream}");
    }

    [Fact]
    public async Task ConcurrentAppends_ShareCommits_YetEachGetsItsOwnOutcome_AndTheQuotaHoldsExactly()
    {
        using var admin = await factory.AdminAsync();
        var (user, userId, _) = await factory.UserClientAsync();
        using var _1 = user;
        var prefix = $"gc{Guid.NewGuid():N}"[..12];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{userId}", streamPrefix = prefix, capabilities = new[] { "append", "read" } }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/quotas/users/{userId}/storedEvents", new { limit = 10, unlimited = false }, _ct)).StatusCode);
        var shared = Stream(prefix);
        Assert.Equal(HttpStatusCode.Created, (await AppendAsync(admin, shared, "no_stream", Event())).StatusCode);
        var retried = Event();

        // All at once, so the writer takes them in few transactions: appends to new streams, the same append sent
        // twice, two appends that both expect version 0 of one stream, and a user whose quota has room for 10 of 16.
        var tasks = new List<Task<HttpResponseMessage>>();
        tasks.AddRange(Enumerable.Range(0, 12).Select(_ => AppendAsync(admin, Stream(prefix), "no_stream", Event(), Event())));
        var twice = Stream(prefix) + "-twice";
        tasks.Add(AppendAsync(admin, twice, "any", retried));
        tasks.AddRange(Enumerable.Range(0, 2).Select(_ => AppendAsync(admin, shared, 0, Event())));
        tasks.AddRange(Enumerable.Range(0, 8).Select(_ => AppendAsync(user, Stream(prefix), "any", Event(), Event())));
        var answers = await Task.WhenAll(tasks);

        Assert.All(answers[..12], a => Assert.Equal(HttpStatusCode.Created, a.StatusCode));
        // Exactly one of the two writers expecting version 0 wins; the other learns the stream moved on.
        Assert.Equal([HttpStatusCode.Created, HttpStatusCode.Conflict], answers[13..15].Select(a => a.StatusCode).Order());
        var lost = answers[13..15].Single(a => a.StatusCode == HttpStatusCode.Conflict);
        Assert.Equal(1, (await lost.JsonAsync())["actualVersion"]!.GetValue<long>());
        // Two events each: five of the user's eight fit into a limit of ten, the rest are refused and write nothing.
        Assert.Equal(5, answers[15..].Count(a => a.StatusCode == HttpStatusCode.Created));
        Assert.All(answers[15..].Where(a => a.StatusCode != HttpStatusCode.Created), a => Assert.Equal(HttpStatusCode.TooManyRequests, a.StatusCode));
        var quotas = (await (await user.GetAsync("/api/v1/me/quotas", _ct)).JsonAsync()).AsArray();
        Assert.Equal(10, quotas.Single(q => q!["name"]!.GetValue<string>() == "storedEvents")!["used"]!.GetValue<long>());

        // The same append again, now and at once twice more: one write, the same answer.
        var first = await answers[12].JsonAsync();
        var again = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => AppendAsync(admin, twice, "any", retried)));
        foreach (var answer in again)
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.Equal(first["position"]!.GetValue<long>(), (await answer.JsonAsync())["position"]!.GetValue<long>());
        }

        // $all holds every written event once, in one unbroken run of positions.
        var all = (await (await admin.GetAsync($"/api/v1/streams/$all/events?streamPrefix={prefix}&limit=1000", _ct)).JsonAsync())["events"]!.AsArray();
        Assert.Equal(1 + 24 + 1 + 1 + 10, all.Count);
        var positions = all.Select(e => e!["position"]!.GetValue<long>()).ToList();
        Assert.Equal(positions.Count, positions.Distinct().Count());
        Assert.Equal(positions.Order(), positions);
    }

    [Fact]
    public async Task AppendsCountAgainstTheStoredEventsQuota_AndGoingOverIs429_WritingNothing_ButRetriesAreAnswered()
    {
        using var admin = await factory.AdminAsync();
        var (user, userId, _) = await factory.UserClientAsync();
        using var _1 = user;
        var prefix = $"q{Guid.NewGuid():N}"[..12];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"user:{userId}", streamPrefix = prefix, capabilities = new[] { "append", "read" } }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/quotas/users/{userId}/storedEvents", new { limit = 3, unlimited = false }, _ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await AppendAsync(user, prefix + "-a", "any", Event(), Event())).StatusCode);
        var over = await AppendAsync(user, prefix + "-b", "any", Event(), Event());
        await over.AssertProblemAsync(HttpStatusCode.TooManyRequests);
        Assert.Equal("storedEvents", (await over.JsonAsync())["quota"]!.GetValue<string>());
        await (await user.GetAsync($"/api/v1/streams/{prefix}-b/events", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        var last = Event();
        Assert.Equal(HttpStatusCode.Created, (await AppendAsync(user, prefix + "-b", "any", last)).StatusCode);

        // The quota is full, yet a retry of an append that was written is answered with its result.
        Assert.Equal(HttpStatusCode.OK, (await AppendAsync(user, prefix + "-b", "any", last)).StatusCode);
        var quotas = (await (await user.GetAsync("/api/v1/me/quotas", _ct)).JsonAsync()).AsArray();
        Assert.Equal(3, quotas.Single(q => q!["name"]!.GetValue<string>() == "storedEvents")!["used"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("""{"expectedVersion":"latest","events":[{"id":"a","type":"T","data":1}]}""", "expectedVersion")]
    [InlineData("""{"expectedVersion":-2,"events":[{"id":"a","type":"T","data":1}]}""", "expectedVersion")]
    [InlineData("""{"events":[]}""", "events")]
    [InlineData("""{"events":[{"id":"a","type":"T"}]}""", "events[0].data")]
    [InlineData("""{"events":[{"id":"a b","type":"T","data":1}]}""", "events[0].id")]
    [InlineData("""{"events":[{"id":"a","type":"","data":1}]}""", "events[0].type")]
    [InlineData("""{"events":[{"id":"a","type":"T","data":1,"metadata":[1]}]}""", "events[0].metadata")]
    [InlineData("""{"events":[{"id":"a","type":"T","data":1},{"id":"a","type":"T","data":2}]}""", "events")]
    public async Task BadAppends_Are400_NamingTheField_AndWriteNothing(string body, string field)
    {
        using var admin = await factory.AdminAsync();
        var stream = Stream();
        var response = await admin.PostAsync($"/api/v1/streams/{stream}/events", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), _ct);

        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.NotNull((await response.JsonAsync())["errors"]![field]);
        await (await admin.GetAsync($"/api/v1/streams/{stream}/events", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task BadNamesAndReads_Are400()
    {
        using var admin = await factory.AdminAsync();
        await (await AppendAsync(admin, "$mine", "any", Event())).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await AppendAsync(admin, new string('s', 201), "any", Event())).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync($"/api/v1/streams/{Stream()}/events?direction=sideways", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync($"/api/v1/streams/{Stream()}/events?limit=0", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync("/api/v1/streams/$all/events?fromPosition=-1", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync("/api/v1/streams/$all/events?streamPrefix=a%20b", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        var big = new string('x', 70_000);
        await (await AppendAsync(admin, Stream(), "any", Event(data: new { big }))).AssertProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task ASlowAppend_HeldOpen_NeverLetsAReaderPassItsPosition()
    {
        using var admin = await factory.AdminAsync();
        var database = factory.Services.GetRequiredService<IDatabase>();
        var store = factory.Services.GetRequiredService<EventStore>();
        var prefix = "gap" + Guid.NewGuid().ToString("N")[..8];
        var start = (await (await AppendAsync(admin, $"{prefix}-0", "any", Event())).JsonAsync())["position"]!.GetValue<long>();

        // An append whose transaction stays open while later appends try to commit.
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
        var later = Enumerable.Range(1, 5).Select(i => AppendAsync(admin, $"{prefix}-{i}", "any", Event())).ToList();

        // A reader polling $all meanwhile only ever sees an unbroken run of positions.
        var seen = new List<long>();
        async Task ReadAsync()
        {
            var from = seen.Count == 0 ? start : seen[^1];
            var events = (await (await admin.GetAsync($"/api/v1/streams/$all/events?fromPosition={from}&streamPrefix={prefix}-", _ct)).JsonAsync())["events"]!.AsArray();
            foreach (var position in events.Select(e => e!["position"]!.GetValue<long>()))
            {
                Assert.Equal((seen.Count == 0 ? start : seen[^1]) + 1, position);
                seen.Add(position);
            }
        }
        for (var i = 0; i < 5; i++)
        {
            await ReadAsync();
        }
        Assert.Empty(seen);
        Assert.All(later, t => Assert.False(t.IsCompleted));

        release.SetResult();
        await slow;
        foreach (var response in await Task.WhenAll(later))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }
        await ReadAsync();
        Assert.Equal(Enumerable.Range(1, 6).Select(i => start + i), seen);
    }
}

public sealed class SqliteEventStoreTests(SqliteFundamentFactory factory) : EventStoreTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresEventStoreTests : EventStoreTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresEventStoreTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
