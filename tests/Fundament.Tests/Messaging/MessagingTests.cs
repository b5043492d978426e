using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Core.Modules;
using Fundament.Messaging;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Messaging;

/// <summary>The bus through its HTTP API: publish, consumer groups, leases, retries, ordered keys, dead letters, access and limits.</summary>
public abstract class MessagingTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static string Topic() => $"t{Guid.NewGuid():N}"[..14];

    /// <summary>Why concurrent publishes of one id may both be delivered on this transport (at least once), or null when exactly one is stored.</summary>
    protected virtual string? NoExactConcurrentDedupe => null;

    private async Task<JsonNode> PublishAsync(HttpClient client, string topic, object body, string? id = null, string? key = null, HttpStatusCode expected = HttpStatusCode.Accepted)
    {
        var response = await client.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { id, key, body }, _ct);
        Assert.True(response.StatusCode == expected, await response.Content.ReadAsStringAsync(_ct));
        return await response.JsonAsync();
    }

    private async Task<JsonNode> GroupAsync(HttpClient client, string topic, object request, HttpStatusCode expected = HttpStatusCode.Created)
    {
        var response = await client.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", request, _ct);
        Assert.True(response.StatusCode == expected, await response.Content.ReadAsStringAsync(_ct));
        return await response.JsonAsync();
    }

    private async Task<List<JsonNode>> PullAsync(HttpClient client, string topic, string group, int max = 10, string query = "")
    {
        var response = await client.PostAsync($"/api/v1/topics/{topic}/subscriptions/{group}/pull?max={max}{query}", null, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(_ct));
        return (await response.JsonAsync())["messages"]!.AsArray().Select(m => m!).ToList();
    }

    private async Task<JsonNode> SettleAsync(HttpClient client, string topic, string group, string verb, IEnumerable<JsonNode> leased, object? extra = null)
    {
        var body = new JsonObject { ["leaseIds"] = new JsonArray(leased.Select(l => (JsonNode)JsonValue.Create(LeaseId(l))).ToArray()) };
        if (extra is not null)
        {
            foreach (var (name, value) in System.Text.Json.JsonSerializer.SerializeToNode(extra, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web))!.AsObject())
            {
                body[name] = value?.DeepClone();
            }
        }
        var response = await client.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/{group}/{verb}", body, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(_ct));
        return await response.JsonAsync();
    }

    private async Task<JsonNode> GroupStateAsync(HttpClient client, string topic, string group) =>
        await (await client.GetAsync($"/api/v1/topics/{topic}/subscriptions/{group}", _ct)).JsonAsync();

    private async Task<JsonArray> DeadLettersAsync(HttpClient client, string query) =>
        (await (await client.GetAsync($"/api/v1/dead-letters?{query}", _ct)).JsonAsync()).AsArray();

    private static string LeaseId(JsonNode leased) => leased["leaseId"]!.GetValue<string>();

    private static int N(JsonNode leased) => leased["body"]!["n"]!.GetValue<int>();

    [Fact]
    public async Task Publish_IsDeliveredToEveryGroup_OncePerGroup_AndAReSentIdIsADuplicate()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        // Published before any group exists: nobody receives it.
        await PublishAsync(admin, topic, new { n = 0 });
        var created = await GroupAsync(admin, topic, new { group = "billing" });
        Assert.Equal(5, created["maxAttempts"]!.GetValue<int>());
        Assert.False(created["ordered"]!.GetValue<bool>());
        await GroupAsync(admin, topic, new { group = "audit" });

        var first = await PublishAsync(admin, topic, new { n = 1 }, id: "order-1", key: "customer-7");
        Assert.False(first["duplicate"]!.GetValue<bool>());
        var again = await PublishAsync(admin, topic, new { n = 1, changed = true }, id: "order-1");
        Assert.True(again["duplicate"]!.GetValue<bool>());
        Assert.Equal(first["sequence"]!.GetValue<long>(), again["sequence"]!.GetValue<long>());
        await PublishAsync(admin, topic, new { n = 2 });

        foreach (var group in new[] { "billing", "audit" })
        {
            var leased = await PullAsync(admin, topic, group);
            Assert.Equal([1, 2], leased.Select(N));
            Assert.Equal("order-1", leased[0]["id"]!.GetValue<string>());
            Assert.Equal("customer-7", leased[0]["key"]!.GetValue<string>());
            Assert.All(leased, m => Assert.Equal(1, m["attempt"]!.GetValue<int>()));
            Assert.Equal(2, (await SettleAsync(admin, topic, group, "ack", leased))["done"]!.GetValue<int>());
            Assert.Empty(await PullAsync(admin, topic, group));
            var state = await GroupStateAsync(admin, topic, group);
            Assert.Equal(0, state["ready"]!.GetValue<long>() + state["leased"]!.GetValue<long>());
        }
    }

    [Fact]
    public async Task APull_Waits_ForAMessagePublishedMeanwhile()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g" });
        var pull = PullAsync(admin, topic, "g", query: "&wait=20");
        await Task.Delay(200, _ct);
        Assert.False(pull.IsCompleted);
        await PublishAsync(admin, topic, new { n = 1 });
        Assert.Equal([1], (await pull.WaitAsync(TimeSpan.FromSeconds(10), _ct)).Select(N));
    }

    [Fact]
    public async Task CompetingConsumers_ShareAGroup_AndEachMessageIsHandledOnce()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "workers" });
        for (var i = 0; i < 60; i++)
        {
            await PublishAsync(admin, topic, new { n = i });
        }
        var handled = new System.Collections.Concurrent.ConcurrentBag<int>();
        async Task ConsumeAsync()
        {
            while (true)
            {
                var leased = await PullAsync(admin, topic, "workers", max: 7);
                if (leased.Count == 0)
                {
                    return;
                }
                foreach (var m in leased)
                {
                    handled.Add(N(m));
                }
                await SettleAsync(admin, topic, "workers", "ack", leased);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(ConsumeAsync, _ct)));
        Assert.Equal(Enumerable.Range(0, 60), handled.Order());
    }

    [Fact]
    public async Task ANack_RetriesAfterTheBackoff_ThenOutOfAttempts_BecomesADeadLetter_WithWhy()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g", maxAttempts = 3, backoff = new { initialSeconds = 10, maxSeconds = 15 } });
        await PublishAsync(admin, topic, new { n = 1 }, id: "m-1");

        var first = Assert.Single(await PullAsync(admin, topic, "g"));
        await SettleAsync(admin, topic, "g", "nack", [first], new { reason = "database timeout", exceptionType = "System.TimeoutException" });
        Assert.Empty(await PullAsync(admin, topic, "g"));
        factory.Time.Advance(TimeSpan.FromSeconds(11));
        var second = Assert.Single(await PullAsync(admin, topic, "g"));
        Assert.Equal(2, second["attempt"]!.GetValue<int>());
        await SettleAsync(admin, topic, "g", "nack", [second], new { reason = "database timeout again", exceptionType = "System.TimeoutException" });
        // Doubled, up to maxSeconds: 15 s, not 20.
        factory.Time.Advance(TimeSpan.FromSeconds(14));
        Assert.Empty(await PullAsync(admin, topic, "g"));
        factory.Time.Advance(TimeSpan.FromSeconds(2));
        var third = Assert.Single(await PullAsync(admin, topic, "g"));
        Assert.Equal(3, third["attempt"]!.GetValue<int>());
        await SettleAsync(admin, topic, "g", "nack", [third], new { reason = "still failing", exceptionType = "System.InvalidOperationException" });

        factory.Time.Advance(TimeSpan.FromMinutes(10));
        Assert.Empty(await PullAsync(admin, topic, "g"));
        var dead = Assert.Single(await DeadLettersAsync(admin, $"topic={topic}&group=g"))!;
        Assert.Equal("m-1", dead["messageId"]!.GetValue<string>());
        Assert.Equal("still failing", dead["reason"]!.GetValue<string>());
        Assert.Equal("System.InvalidOperationException", dead["exceptionType"]!.GetValue<string>());
        Assert.Equal(3, dead["attempts"]!.GetValue<int>());
        Assert.True(dead["firstFailureAt"]!.GetValue<DateTimeOffset>() < dead["lastFailureAt"]!.GetValue<DateTimeOffset>());
        Assert.Equal(1, (await GroupStateAsync(admin, topic, "g"))["deadLetters"]!.GetValue<long>());

        // The alert condition holds for the group while dead letters are fresh.
        var conditions = factory.Services.GetServices<IAlertConditionSource>().Single(s => s.Kinds.Any(k => k.Kind == "dead_letters_growing"));
        Assert.Contains(await conditions.EvaluateAsync("dead_letters_growing", topic, _ct), c => c.Subject == $"consumer-group:{topic}/g");
        factory.Time.Advance(TimeSpan.FromHours(1));
        Assert.DoesNotContain(await conditions.EvaluateAsync("dead_letters_growing", topic, _ct), c => c.Subject == $"consumer-group:{topic}/g");
    }

    [Fact]
    public async Task AHandler_CanDeadLetterAtOnce_AndAGroupWithoutDeadLetters_DropsInstead()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "keep", maxAttempts = 10 });
        await GroupAsync(admin, topic, new { group = "drop", maxAttempts = 10, deadLetter = false });
        await PublishAsync(admin, topic, new { n = 1 });

        await SettleAsync(admin, topic, "keep", "nack", await PullAsync(admin, topic, "keep"), new { reason = "poison: cannot parse", deadLetter = true });
        Assert.Equal("poison: cannot parse", Assert.Single(await DeadLettersAsync(admin, $"topic={topic}&group=keep"))!["reason"]!.GetValue<string>());

        await SettleAsync(admin, topic, "drop", "nack", await PullAsync(admin, topic, "drop"), new { reason = "poison", deadLetter = true });
        Assert.Empty(await DeadLettersAsync(admin, $"topic={topic}&group=drop"));
        var state = await GroupStateAsync(admin, topic, "drop");
        Assert.Equal(0, state["ready"]!.GetValue<long>() + state["leased"]!.GetValue<long>() + state["deadLetters"]!.GetValue<long>());
    }

    [Fact]
    public async Task ALeaseThatRunsOut_HandsTheMessageOutAgain_AndTheOldLeaseNoLongerSettlesIt()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g", maxAttempts = 2 });
        await PublishAsync(admin, topic, new { n = 1 });

        // A consumer that leased and vanished (killed with -9, say) never acks.
        var lost = Assert.Single(await PullAsync(admin, topic, "g", query: "&lease=5"));
        Assert.Empty(await PullAsync(admin, topic, "g"));
        factory.Time.Advance(TimeSpan.FromSeconds(6));
        var again = Assert.Single(await PullAsync(admin, topic, "g", query: "&lease=5"));
        Assert.Equal(2, again["attempt"]!.GetValue<int>());
        var stale = await SettleAsync(admin, topic, "g", "ack", [lost]);
        Assert.Equal(0, stale["done"]!.GetValue<int>());
        Assert.Equal([LeaseId(lost)], stale["stale"]!.AsArray().Select(s => s!.GetValue<string>()));

        // Ran out on the last attempt: a dead letter that says so.
        factory.Time.Advance(TimeSpan.FromSeconds(6));
        Assert.Empty(await PullAsync(admin, topic, "g"));
        var dead = Assert.Single(await DeadLettersAsync(admin, $"topic={topic}&group=g"))!;
        Assert.Contains("lease ran out", dead["reason"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Release_GivesMessagesBackAtOnce_WithoutUsingUpAnAttempt()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g", maxAttempts = 1 });
        await PublishAsync(admin, topic, new { n = 1 });
        var first = await PullAsync(admin, topic, "g");
        Assert.Equal(1, (await SettleAsync(admin, topic, "g", "nack", first, new { release = true }))["done"]!.GetValue<int>());
        var again = Assert.Single(await PullAsync(admin, topic, "g"));
        Assert.Equal(1, again["attempt"]!.GetValue<int>());
    }

    [Fact]
    public async Task AnOrderedGroup_DeliversAKeyInOrder_AFailureHoldsBackOnlyItsKey_AndItsDeadLettersKeepTheOrder()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "ordered", ordered = true, maxAttempts = 2, backoff = new { initialSeconds = 0, maxSeconds = 0 } });
        await GroupAsync(admin, topic, new { group = "unordered" });
        foreach (var (n, key) in new[] { (1, "a"), (2, "b"), (3, "a"), (4, "b"), (5, "a"), (6, (string?)null) })
        {
            await PublishAsync(admin, topic, new { n }, key: key);
        }

        // Unordered: everything at once.
        Assert.Equal([1, 2, 3, 4, 5, 6], (await PullAsync(admin, topic, "unordered")).Select(N));

        // Ordered: the head of each key (and the keyless message), nothing behind a held head.
        var heads = await PullAsync(admin, topic, "ordered");
        Assert.Equal([1, 2, 6], heads.Select(N));
        Assert.Empty(await PullAsync(admin, topic, "ordered"));
        await SettleAsync(admin, topic, "ordered", "ack", heads.Where(m => N(m) != 1));
        await SettleAsync(admin, topic, "ordered", "nack", heads.Where(m => N(m) == 1), new { reason = "a1 failed", deadLetter = true });

        // Key b moves on; key a stays behind its dead letter.
        Assert.Equal([4], (await PullAsync(admin, topic, "ordered")).Select(N));
        var dead = Assert.Single(await DeadLettersAsync(admin, $"topic={topic}&group=ordered"))!;
        Assert.Equal("a", dead["key"]!.GetValue<string>());
        Assert.Equal(2, dead["blocking"]!.GetValue<long>());

        // Replaying the key delivers it in order again: 1, then 3, then 5.
        var replay = await admin.PostAsJsonAsync("/api/v1/dead-letters/replay", new { topic, group = "ordered", key = "a" }, _ct);
        Assert.Equal(1, (await replay.JsonAsync())["count"]!.GetValue<int>());
        var order = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            var next = await PullAsync(admin, topic, "ordered");
            var one = Assert.Single(next, m => m["key"]?.GetValue<string>() == "a");
            order.Add(N(one));
            await SettleAsync(admin, topic, "ordered", "ack", next);
        }
        Assert.Equal([1, 3, 5], order);
    }

    [Fact]
    public async Task DeadLetters_OfAnOrderedKey_StayInOrder_AndPurgingLetsTheKeyGo()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "o", ordered = true, maxAttempts = 1 });
        for (var n = 1; n <= 3; n++)
        {
            await PublishAsync(admin, topic, new { n }, key: "k");
        }
        // 1 dies; replayed, it dies again; then purging it lets 2 and 3 through in order.
        await SettleAsync(admin, topic, "o", "nack", await PullAsync(admin, topic, "o"), new { reason = "boom" });
        Assert.Empty(await PullAsync(admin, topic, "o"));
        var replay = await admin.PostAsJsonAsync("/api/v1/dead-letters/replay", new { topic, group = "o", all = true }, _ct);
        Assert.Equal(1, (await replay.JsonAsync())["count"]!.GetValue<int>());
        // Replaying again moves nothing: 1 is not a dead letter any more, and 2 and 3 never were.
        Assert.Equal(0, (await (await admin.PostAsJsonAsync("/api/v1/dead-letters/replay", new { topic, group = "o", all = true }, _ct)).JsonAsync())["count"]!.GetValue<int>());
        var retried = Assert.Single(await PullAsync(admin, topic, "o"));
        Assert.Equal(1, N(retried));
        await SettleAsync(admin, topic, "o", "nack", [retried], new { reason = "boom again" });

        var dead = Assert.Single(await DeadLettersAsync(admin, $"topic={topic}&group=o"))!;
        var purge = await admin.PostAsJsonAsync("/api/v1/dead-letters/purge", new { topic, group = "o", sequences = new[] { dead["sequence"]!.GetValue<long>() } }, _ct);
        Assert.Equal(1, (await purge.JsonAsync())["count"]!.GetValue<int>());
        Assert.Empty(await DeadLettersAsync(admin, $"topic={topic}&group=o"));
        var two = Assert.Single(await PullAsync(admin, topic, "o"));
        Assert.Equal(2, N(two));
        await SettleAsync(admin, topic, "o", "ack", [two]);
        Assert.Equal([3], (await PullAsync(admin, topic, "o")).Select(N));
    }

    [Fact]
    public async Task DeadLetters_AreListedAPageAtATime_InTopicGroupAndSequenceOrder()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "a", maxAttempts = 1 });
        await GroupAsync(admin, topic, new { group = "b", maxAttempts = 1 });
        for (var n = 1; n <= 3; n++)
        {
            await PublishAsync(admin, topic, new { n });
        }
        foreach (var group in new[] { "a", "b" })
        {
            await SettleAsync(admin, topic, group, "nack", await PullAsync(admin, topic, group), new { reason = "x" });
        }
        var seen = new List<string>();
        var url = $"/api/v1/dead-letters?topic={topic}&limit=4";
        while (url is not null)
        {
            var response = await admin.GetAsync(url, _ct);
            seen.AddRange((await response.JsonAsync()).AsArray().Select(d => $"{d!["group"]}{N(d)}"));
            url = response.Headers.TryGetValues("Link", out var links) ? links.Single().Split('<', '>')[1] : null;
        }
        Assert.Equal(["a1", "a2", "a3", "b1", "b2", "b3"], seen);
    }

    [Fact]
    public async Task Access_IsGrantedByTopicPrefix_AndAGroupBelongsToItsCreator()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        var (service, serviceId) = await factory.ServiceClientAsync(Api.UniqueName("orders"));
        using var _1 = service;
        var (stranger, strangerId) = await factory.ServiceClientAsync(Api.UniqueName("other"));
        using var _2 = stranger;

        // Nothing without a grant, and the denial is audited.
        var denied = await service.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { body = new { n = 1 } }, _ct);
        await denied.AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await service.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "g" }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        var audit = await (await admin.GetAsync("/api/v1/audit?action=messaging.publish&limit=50", _ct)).JsonAsync();
        Assert.Contains(audit["items"]!.AsArray(), e => e!["outcome"]!.GetValue<string>() == "denied" && e["target"]!.GetValue<string>() == $"topic:{topic}");

        // Only messaging.admin hands out topics: a service cannot grant itself one.
        await (await service.PostAsJsonAsync("/api/v1/topic-grants", new { principal = $"client:{serviceId}", topicPrefix = "", capabilities = new[] { "publish", "consume" } }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await service.GetAsync("/api/v1/topic-grants", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        var grant = await (await admin.PostAsJsonAsync("/api/v1/topic-grants", new { principal = $"client:{serviceId}", topicPrefix = topic[..8], capabilities = new[] { "publish", "consume" } }, _ct)).JsonAsync();
        await GroupAsync(service, topic, new { group = "g" });
        await PublishAsync(service, topic, new { n = 1 });
        // A publish-only grant publishes but does not consume.
        await admin.PostAsJsonAsync("/api/v1/topic-grants", new { principal = $"client:{strangerId}", topicPrefix = topic, capabilities = new[] { "publish" } }, _ct);
        await PublishAsync(stranger, topic, new { n = 2 });
        await (await stranger.PostAsync($"/api/v1/topics/{topic}/subscriptions/g/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);

        // Consuming the same topic does not make another principal's group yours.
        await admin.PostAsJsonAsync("/api/v1/topic-grants", new { principal = $"client:{strangerId}", topicPrefix = topic, capabilities = new[] { "consume" } }, _ct);
        await (await stranger.PostAsync($"/api/v1/topics/{topic}/subscriptions/g/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await stranger.DeleteAsync($"/api/v1/topics/{topic}/subscriptions/g", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await stranger.PostAsJsonAsync("/api/v1/dead-letters/purge", new { topic, group = "g", all = true }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await stranger.PostAsJsonAsync("/api/v1/dead-letters/replay", new { topic, group = "g", all = true }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await GroupAsync(stranger, topic, new { group = "g" }, HttpStatusCode.Conflict);
        Assert.Empty((await (await stranger.GetAsync($"/api/v1/topics/{topic}/subscriptions", _ct)).JsonAsync()).AsArray());
        Assert.Single((await (await service.GetAsync($"/api/v1/topics/{topic}/subscriptions", _ct)).JsonAsync()).AsArray());
        // Its own group of the same name is the same group: created again with the same settings, 200.
        await GroupAsync(service, topic, new { group = "g" }, HttpStatusCode.OK);
        await GroupAsync(service, topic, new { group = "g", maxAttempts = 9 }, HttpStatusCode.Conflict);

        var both = await PullAsync(service, topic, "g");
        Assert.Equal([1, 2], both.Select(N));
        // Its dead letters are the owner's: a stranger consuming the same topic does not see them.
        await SettleAsync(service, topic, "g", "nack", both, new { deadLetter = true, reason = "x" });
        Assert.Equal(2, (await DeadLettersAsync(service, $"topic={topic}")).Count);
        Assert.Empty(await DeadLettersAsync(stranger, $"topic={topic}"));
        Assert.Empty(await DeadLettersAsync(stranger, $"topic={topic}&group=g"));
        // Revoking the grant stops the consumer at once.
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/topic-grants/{grant["id"]!.GetValue<string>()}", _ct)).StatusCode);
        await (await service.PostAsync($"/api/v1/topics/{topic}/subscriptions/g/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        // The list of dead letters needs a topic without messaging.admin.
        await (await service.GetAsync("/api/v1/dead-letters", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("bad topic!", """{"body":1}""", "topic")]
    [InlineData("ok", """{"id":"","body":1}""", "id")]
    [InlineData("ok", """{"key":"","body":1}""", "key")]
    [InlineData("ok", """{}""", "body")]
    [InlineData("ok", """{"body":1,"headers":{"bad name":"x"}}""", "headers")]
    public async Task BadPublishes_Are400_AndStoreNothing(string topic, string body, string field)
    {
        using var admin = await factory.AdminAsync();
        var group = Topic();
        await GroupAsync(admin, "ok", new { group });
        var response = await admin.PostAsync($"/api/v1/topics/{Uri.EscapeDataString(topic)}/messages", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), _ct);
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.NotNull((await response.JsonAsync())["errors"]![field]);
        Assert.Equal(0, (await GroupStateAsync(admin, "ok", group))["ready"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("""{"group":"bad name"}""", "group")]
    [InlineData("""{"group":"g","maxAttempts":0}""", "maxAttempts")]
    [InlineData("""{"group":"g","maxAttempts":101}""", "maxAttempts")]
    [InlineData("""{"group":"g","backoff":{"initialSeconds":10,"maxSeconds":5}}""", "backoff")]
    [InlineData("""{"group":"g","backoff":{"initialSeconds":-1,"maxSeconds":5}}""", "backoff")]
    public async Task BadGroups_Are400_AndCreateNothing(string body, string field)
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        var response = await admin.PostAsync($"/api/v1/topics/{topic}/subscriptions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), _ct);
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.NotNull((await response.JsonAsync())["errors"]![field]);
        Assert.Empty((await (await admin.GetAsync($"/api/v1/topics/{topic}/subscriptions", _ct)).JsonAsync()).AsArray());
    }

    [Fact]
    public async Task BadPullsSettlesAndSelections_Are400()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g" });
        foreach (var query in new[] { "max=0", "max=1001", "lease=0", "lease=NaN", "wait=-1", "wait=3600", "wait=NaN" })
        {
            await (await admin.PostAsync($"/api/v1/topics/{topic}/subscriptions/g/pull?{query}", null, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        }
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/g/ack", new { }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/g/nack", new { leaseId = "x", leaseIds = new[] { "y" } }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/g/nack", new { leaseId = "x", retryAfterSeconds = -1 }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/dead-letters/replay", new { topic, group = "g" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/dead-letters/replay", new { topic, group = "g", key = "k", all = true }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/dead-letters/purge", new { topic, group = "g", sequences = Array.Empty<long>() }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync("/api/v1/dead-letters?after=nonsense", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync("/api/v1/dead-letters?key=a%00b", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { key = "a\0b", body = 1 }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/g/nack", new { leaseId = "x", reason = "a\0b" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/g/ack", new { leaseId = "a\0b" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        // Unknown or forged lease ids settle nothing: the right sequence under another pull's id does not.
        await PublishAsync(admin, topic, new { n = 1 });
        var leased = Assert.Single(await PullAsync(admin, topic, "g"));
        var forgedId = new string('0', 32) + "." + leased["sequence"]!.GetValue<long>();
        foreach (var verb in new[] { "ack", "nack" })
        {
            var forged = await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/g/{verb}", new { leaseIds = new[] { "x", forgedId } }, _ct)).JsonAsync();
            Assert.Equal(0, forged["done"]!.GetValue<int>());
        }
        Assert.Equal(1, (await GroupStateAsync(admin, topic, "g"))["leased"]!.GetValue<long>());
        Assert.Equal(1, (await SettleAsync(admin, topic, "g", "ack", [leased]))["done"]!.GetValue<int>());
        await (await admin.PostAsync($"/api/v1/topics/{topic}/subscriptions/nope/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task AMessageOverTheSizeLimit_Is413()
    {
        using var admin = await factory.AdminAsync();
        var response = await admin.PostAsJsonAsync($"/api/v1/topics/{Topic()}/messages", new { body = new string('x', 300 * 1024) }, _ct);
        await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task MessageIds_AreRememberedForTheDedupeWindow_ThenForgottenOnceConsumed()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g" });
        await PublishAsync(admin, topic, new { n = 1 }, id: "once");
        await SettleAsync(admin, topic, "g", "ack", await PullAsync(admin, topic, "g"));
        var metrics = factory.Services.GetRequiredService<MessagingMetrics>();
        factory.Time.Advance(TimeSpan.FromMinutes(5));
        await metrics.RefreshAsync(_ct);
        Assert.True((await PublishAsync(admin, topic, new { n = 1 }, id: "once"))["duplicate"]!.GetValue<bool>());
        factory.Time.Advance(TimeSpan.FromMinutes(6));
        await metrics.RefreshAsync(_ct);
        Assert.False((await PublishAsync(admin, topic, new { n = 1 }, id: "once"))["duplicate"]!.GetValue<bool>());
        Assert.Equal([1], (await PullAsync(admin, topic, "g")).Select(N));
    }
    [Fact]
    public async Task ABatchPublish_StoresAllInOrder_AndABadMessage_StoresNone()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g" });
        await PublishAsync(admin, topic, new { n = 0 }, id: "before");
        var response = await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages/batch", new
        {
            messages = new object[] { new { id = "a", body = new { n = 1 } }, new { id = "before", body = new { n = 9 } }, new { id = "b", key = "k", body = new { n = 2 } }, new { id = "a", body = new { n = 9 } } },
        }, _ct);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var results = (await response.JsonAsync())["messages"]!.AsArray();
        Assert.Equal([false, true, false, true], results.Select(r => r!["duplicate"]!.GetValue<bool>()));
        Assert.Equal(results[0]!["sequence"]!.GetValue<long>(), results[3]!["sequence"]!.GetValue<long>());
        Assert.True(results[0]!["sequence"]!.GetValue<long>() < results[2]!["sequence"]!.GetValue<long>());
        Assert.Equal([0, 1, 2], (await PullAsync(admin, topic, "g")).Select(N));

        var bad = await admin.PostAsync($"/api/v1/topics/{topic}/messages/batch", new StringContent("""{"messages":[{"id":"c","body":1},{"id":"d"}]}""", System.Text.Encoding.UTF8, "application/json"), _ct);
        await bad.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.NotNull((await bad.JsonAsync())["errors"]!["messages[1].body"]);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages/batch", new { messages = Array.Empty<object>() }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages/batch", new { messages = Enumerable.Range(0, 501).Select(n => new { body = n }).ToArray() }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        var state = await GroupStateAsync(admin, topic, "g");
        Assert.Equal(0, state["ready"]!.GetValue<long>());
        // "c" was not stored: publishing it now is not a duplicate.
        Assert.False((await PublishAsync(admin, topic, new { n = 3 }, id: "c"))["duplicate"]!.GetValue<bool>());
    }

    [Fact]
    public async Task ThePlatformsOwnEvents_AreOnTheBus_AndNobodyPublishesThere()
    {
        using var admin = await factory.AdminAsync();
        const string topic = "fundament.media.ready";
        var group = $"g{Guid.NewGuid():N}"[..12];
        await GroupAsync(admin, topic, new { group });
        await factory.Services.GetRequiredService<IEventPublisher>().PublishAsync("media.ready", "user:someone", new { id = "asset-1" }, _ct);

        var received = Assert.Single(await PullAsync(admin, topic, group));
        Assert.Equal("user:someone", received["key"]!.GetValue<string>());
        Assert.Equal("media.ready", received["body"]!["event"]!.GetValue<string>());
        Assert.Equal("asset-1", received["body"]!["data"]!["id"]!.GetValue<string>());
        Assert.Equal("media.ready", received["headers"]!["fundament-event"]!.GetValue<string>());

        // Not even an administrator forges a platform event.
        var forged = await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { body = new { @event = "media.ready" } }, _ct);
        await forged.AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages/batch", new { messages = new[] { new { body = 1 } } }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Empty(await PullAsync(admin, topic, group));
    }

    [Fact]
    public async Task DomainEvents_ReachWebhooks_ThroughThePlatformsOwnConsumerGroup_OnceEach()
    {
        using var admin = await factory.AdminAsync();
        var me = (await (await admin.GetAsync("/api/v1/me", _ct)).JsonAsync())["id"]!.GetValue<string>();
        const string topic = "fundament.media.failed";
        var hook = await (await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = "https://hooks.example.test/bus", events = new[] { "media.failed" } }, _ct)).JsonAsync();
        var hookId = hook["id"]!.GetValue<string>();
        // A group of the admin's own on the same topic shows the bus message the webhook came from.
        var watcher = $"w{Guid.NewGuid():N}"[..12];
        await GroupAsync(admin, topic, new { group = watcher });
        var asset = Guid.NewGuid().ToString();
        await factory.Services.GetRequiredService<IEventPublisher>().PublishAsync("media.failed", $"user:{me}", new { id = asset }, _ct);

        // Until the platform's consumer group takes the event, no webhook delivery exists: there is one path.
        Assert.Empty((await (await admin.GetAsync($"/api/v1/webhooks/{hookId}/deliveries", _ct)).JsonAsync()).AsArray());
        var relayGroup = await GroupStateAsync(admin, topic, "fundament.webhooks");
        Assert.True(relayGroup["ready"]!.GetValue<long>() >= 1, relayGroup.ToJsonString());
        Assert.True(await factory.Services.RelayEventsAsync(_ct) >= 1);
        var delivery = Assert.Single((await (await admin.GetAsync($"/api/v1/webhooks/{hookId}/deliveries", _ct)).JsonAsync()).AsArray())!;
        Assert.Equal("media.failed", delivery["event"]!.GetValue<string>());
        Assert.Equal(0, (await GroupStateAsync(admin, topic, "fundament.webhooks"))["ready"]!.GetValue<long>());

        // The bus may hand the same event over again (at least once): the webhook still gets one delivery.
        var message = Assert.Single(await PullAsync(admin, topic, watcher));
        Assert.Equal(asset, message["body"]!["data"]!["id"]!.GetValue<string>());
        var again = new DomainEvent(message["id"]!.GetValue<string>(), "media.failed", $"user:{me}", message["body"]!["at"]!.GetValue<DateTimeOffset>(),
            System.Text.Json.JsonSerializer.SerializeToElement(message["body"]!["data"]));
        foreach (var handler in factory.Services.GetServices<IDomainEventHandler>())
        {
            await handler.HandleAsync(again, _ct);
        }
        Assert.Single((await (await admin.GetAsync($"/api/v1/webhooks/{hookId}/deliveries", _ct)).JsonAsync()).AsArray());

        // The platform's group is visible, but nobody (messaging.admin included) takes, settles or removes its events, or names a group like it.
        await (await admin.PostAsync($"/api/v1/topics/{topic}/subscriptions/fundament.webhooks/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/fundament.webhooks/ack", new { leaseId = "x.1" }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/fundament.webhooks/nack", new { leaseId = "x.1" }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.DeleteAsync($"/api/v1/topics/{topic}/subscriptions/fundament.webhooks", _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{Topic()}/subscriptions", new { group = "fundament.mine" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/webhooks/{hookId}", _ct)).StatusCode);
    }

    private Task<int> PushAsync() => factory.Services.GetRequiredService<Fundament.Messaging.Push.PushDispatcher>().PassAsync(_ct);

    [Fact]
    public async Task APushGroup_PostsSignedMessages_RetriesByTheAnswer_AndDeadLettersWhatIsGone()
    {
        await using var receiver = await Fundament.Tests.Alerts.WebhookReceiver.StartAsync();
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        var created = await GroupAsync(admin, topic, new { group = "push", maxAttempts = 3, backoff = new { initialSeconds = 60, maxSeconds = 60 }, push = new { url = receiver.Url + "/orders" } });
        var secret = created["pushSecret"]!.GetValue<string>();
        Assert.StartsWith("whsec_", secret);
        Assert.Equal(receiver.Url + "/orders", created["push"]!["url"]!.GetValue<string>());
        // The secret is shown once.
        Assert.Null((await GroupStateAsync(admin, topic, "push"))["pushSecret"]);

        for (var n = 0; n < 3; n++)
        {
            await PublishAsync(admin, topic, new { n }, key: $"k{n}");
        }
        Assert.Equal(3, await PushAsync());
        Assert.Equal(3, receiver.Received.Count);
        foreach (var (headers, raw) in receiver.Received)
        {
            var text = System.Text.Encoding.UTF8.GetString(raw);
            // Signed as the Standard Webhooks library signs (its Verify would also hold the test clock against the real one).
            var at = DateTimeOffset.FromUnixTimeSeconds(long.Parse(headers["webhook-timestamp"], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(new StandardWebhooks.StandardWebhook(secret).Sign(headers["webhook-id"], at, text), headers["webhook-signature"]);
            var pushed = JsonNode.Parse(text)!;
            Assert.Equal(headers["webhook-id"], pushed["id"]!.GetValue<string>());
            Assert.Equal(topic, pushed["topic"]!.GetValue<string>());
            Assert.Equal("push", pushed["group"]!.GetValue<string>());
            Assert.Equal(1, pushed["attempt"]!.GetValue<int>());
            Assert.Equal($"k{pushed["body"]!["n"]!.GetValue<int>()}", pushed["key"]!.GetValue<string>());
        }
        var state = await GroupStateAsync(admin, topic, "push");
        Assert.Equal(0, state["ready"]!.GetValue<long>() + state["leased"]!.GetValue<long>());

        // A receiver that is busy: the attempt failed, retried when it said, with the same webhook-id.
        receiver.Received.Clear();
        receiver.Status = 503;
        receiver.RetryAfter = "7";
        await PublishAsync(admin, topic, new { n = 10 }, key: "k0");
        Assert.Equal(1, await PushAsync());
        Assert.Equal(0, await PushAsync()); // not due yet
        factory.Time.Advance(TimeSpan.FromSeconds(8));
        receiver.Status = 200;
        receiver.RetryAfter = null;
        Assert.Equal(1, await PushAsync());
        var attempts = receiver.Received.ToArray();
        Assert.Equal(2, attempts.Length);
        Assert.Equal(attempts[0].Headers["webhook-id"], attempts[1].Headers["webhook-id"]);
        Assert.Equal("2", attempts[1].Headers["fundament-attempt"]);

        // 410 Gone: the receiver will never take it; dead-lettered at once, with the answer as its reason.
        receiver.Status = 410;
        await PublishAsync(admin, topic, new { n = 20 }, key: "k1");
        Assert.Equal(1, await PushAsync());
        var dead = Assert.Single(await DeadLettersAsync(admin, $"topic={topic}&group=push"));
        Assert.Contains("HTTP 410", dead!["reason"]!.GetValue<string>());
        receiver.Status = 200;

        // The platform consumes a push group: nobody pulls or settles it by hand.
        await (await admin.PostAsync($"/api/v1/topics/{topic}/subscriptions/push/pull", null, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/push/ack", new { leaseId = "x.1" }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/topics/{topic}/subscriptions/push", _ct)).StatusCode);
    }

    [Fact]
    public async Task APushGroup_GoesOnlyWhereTheWebhookEgressPolicyAllows_AndBadTargetsChangeNothing()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        foreach (var (push, field) in new (object Push, string Field)[]
        {
            (new { url = "http://169.254.169.254/latest/meta-data/" }, "push.url"), // cloud metadata: never
            (new { url = "ftp://example.test/x" }, "push.url"),
            (new { url = "https://user:pw@example.test/x" }, "push.url"),
            (new { url = "https://example.test/x", secret = "short" }, "push.secret"),
            (new { secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, "push.url"),
        })
        {
            var refused = await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "p", push }, _ct);
            await refused.AssertProblemAsync(HttpStatusCode.BadRequest);
            Assert.NotNull((await refused.JsonAsync())["errors"]![field]);
        }
        await (await admin.GetAsync($"/api/v1/topics/{topic}/subscriptions/p", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);

        // The same group asked for again answers as it is, and never with its secret; another URL is a conflict.
        var first = await GroupAsync(admin, topic, new { group = "p", push = new { url = "https://hooks.example.test/p" } });
        Assert.NotNull(first["pushSecret"]);
        var again = await GroupAsync(admin, topic, new { group = "p", push = new { url = "https://hooks.example.test/p" } }, HttpStatusCode.OK);
        Assert.Null(again["pushSecret"]);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "p", push = new { url = "https://elsewhere.example.test/p" } }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        // A retried create that names its secret is answered as the group it made; another secret is a conflict.
        const string chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        await GroupAsync(admin, topic, new { group = "q", push = new { url = "https://hooks.example.test/q", secret = chosen } });
        await GroupAsync(admin, topic, new { group = "q", push = new { url = "https://hooks.example.test/q", secret = chosen } }, HttpStatusCode.OK);
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "q", push = new { url = "https://hooks.example.test/q", secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } }, _ct))
            .AssertProblemAsync(HttpStatusCode.Conflict);

        // A push URL's query (where a receiver's token travels) is its creator's to see; an administrator sees the rest.
        var (user, userId, _) = await factory.UserClientAsync();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/topic-grants", new { principal = $"user:{userId}", topicPrefix = topic, capabilities = new[] { "consume" } }, _ct)).StatusCode);
        var mine = await GroupAsync(user, topic, new { group = "u", push = new { url = "https://hooks.example.test/u?token=s3cr3t" } });
        Assert.Equal("https://hooks.example.test/u?token=s3cr3t", mine["push"]!["url"]!.GetValue<string>());
        Assert.Equal("https://hooks.example.test/u?…", (await GroupStateAsync(admin, topic, "u"))["push"]!["url"]!.GetValue<string>());
        await (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "p" }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task AnOrderedGroup_UnderConcurrentConsumers_HandlesEveryKeyInOrder_OneAtATime()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "o", ordered = true });
        for (var n = 0; n < 30; n++)
        {
            await PublishAsync(admin, topic, new { n }, key: $"k{n % 3}");
        }
        var handled = new List<(string Key, int N)>();
        var inFlight = new HashSet<string>();
        var overlap = false;
        async Task ConsumeAsync()
        {
            for (var idle = 0; idle < 3;)
            {
                var leased = await PullAsync(admin, topic, "o", max: 5);
                if (leased.Count == 0)
                {
                    idle++;
                    continue;
                }
                idle = 0;
                lock (handled)
                {
                    foreach (var m in leased)
                    {
                        overlap |= !inFlight.Add(m["key"]!.GetValue<string>());
                        handled.Add((m["key"]!.GetValue<string>(), N(m)));
                    }
                }
                await Task.Yield();
                lock (handled)
                {
                    foreach (var m in leased)
                    {
                        inFlight.Remove(m["key"]!.GetValue<string>());
                    }
                }
                await SettleAsync(admin, topic, "o", "ack", leased);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(ConsumeAsync, _ct)));
        Assert.False(overlap);
        Assert.Equal(30, handled.Count);
        foreach (var key in handled.GroupBy(h => h.Key))
        {
            Assert.Equal(key.Select(h => h.N).Order(), key.Select(h => h.N));
        }
    }

    [Fact]
    public async Task ConcurrentPublishesOfOneId_StoreOneMessage()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g" });
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => PublishAsync(admin, topic, new { n = 1 }, id: "same"), _ct)));
        if (NoExactConcurrentDedupe is not null)
        {
            // At least once: every racing publish that was not answered as a duplicate is delivered, each with the id.
            var stored = answers.Count(a => !a["duplicate"]!.GetValue<bool>());
            Assert.InRange(stored, 1, 8);
            var delivered = new List<JsonNode>();
            for (var i = 0; i < 20 && delivered.Count < stored; i++)
            {
                delivered.AddRange(await PullAsync(admin, topic, "g", max: 20, query: "&wait=1"));
            }
            Assert.Equal(stored, delivered.Count);
            Assert.All(delivered, m => Assert.Equal("same", m["id"]!.GetValue<string>()));
            Assert.True((await PublishAsync(admin, topic, new { n = 1 }, id: "same"))["duplicate"]!.GetValue<bool>());
            return;
        }
        Assert.Single(answers, a => !a["duplicate"]!.GetValue<bool>());
        Assert.Single(answers.Select(a => a["sequence"]!.GetValue<long>()).Distinct());
        Assert.Single(await PullAsync(admin, topic, "g"));
    }

    [Fact]
    public async Task ANackOnALeaseThatRanOut_DoesNotTouchTheNewLease()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g", maxAttempts = 5 });
        await PublishAsync(admin, topic, new { n = 1 });
        var old = Assert.Single(await PullAsync(admin, topic, "g", query: "&lease=5"));
        factory.Time.Advance(TimeSpan.FromSeconds(6));
        var current = Assert.Single(await PullAsync(admin, topic, "g", query: "&lease=60"));
        var stale = await SettleAsync(admin, topic, "g", "nack", [old], new { deadLetter = true, reason = "late" });
        Assert.Equal(0, stale["done"]!.GetValue<int>());
        Assert.Empty(await DeadLettersAsync(admin, $"topic={topic}&group=g"));
        Assert.Equal(1, (await SettleAsync(admin, topic, "g", "ack", [current]))["done"]!.GetValue<int>());
    }

    [Fact]
    public async Task AGroupDeletedAndCreatedAgain_StartsEmpty_AndOldLeasesDoNotSettleOnIt()
    {
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        await GroupAsync(admin, topic, new { group = "g" });
        await PublishAsync(admin, topic, new { n = 1 });
        var leased = Assert.Single(await PullAsync(admin, topic, "g"));
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/topics/{topic}/subscriptions/g", _ct)).StatusCode);
        await GroupAsync(admin, topic, new { group = "g" });
        Assert.Empty(await PullAsync(admin, topic, "g"));
        Assert.Equal(0, (await SettleAsync(admin, topic, "g", "ack", [leased]))["done"]!.GetValue<int>());
        await PublishAsync(admin, topic, new { n = 2 });
        Assert.Equal([2], (await PullAsync(admin, topic, "g")).Select(N));
    }
}

public sealed class SqliteMessagingTests(SqliteFundamentFactory factory) : MessagingTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresMessagingTests : MessagingTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresMessagingTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}

/// <summary>The same API and guarantees with messages travelling through a real RabbitMQ (and the database on PostgreSQL).</summary>
public sealed class RabbitMqMessagingTests : MessagingTests, IClassFixture<RabbitMqFundamentFactory>
{
    public RabbitMqMessagingTests(RabbitMqFundamentFactory factory) : base(factory)
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        TestRabbitMq.Require();
    }

    protected override string? NoExactConcurrentDedupe =>
        "on RabbitMQ, re-sends of one id racing each other may both be published (at least once); sequential re-sends are duplicates (covered by the other tests)";
}

/// <summary><c>Fundament:Messaging:MaxMessagesPerGroup</c>: a stalled group stops publishers with 429 until it drains.</summary>
public sealed class MessagingBacklogLimitTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task PublishingToATopicWithAFullGroup_Is429_UntilItDrains()
    {
        await using var factory = new ConfiguredFundamentFactory([new("Fundament:Messaging:MaxMessagesPerGroup", "3")]);
        using var admin = await factory.AdminAsync();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/topics/full/subscriptions", new { group = "slow" }, _ct)).StatusCode);
        for (var n = 0; n < 3; n++)
        {
            Assert.Equal(HttpStatusCode.Accepted, (await admin.PostAsJsonAsync("/api/v1/topics/full/messages", new { body = n }, _ct)).StatusCode);
        }
        var metrics = factory.Services.GetRequiredService<MessagingMetrics>();
        await metrics.RefreshAsync(_ct);
        var refused = await admin.PostAsJsonAsync("/api/v1/topics/full/messages", new { body = 4 }, _ct);
        await refused.AssertProblemAsync(HttpStatusCode.TooManyRequests);
        Assert.NotNull(refused.Headers.RetryAfter);
        // Other topics are not held back.
        Assert.Equal(HttpStatusCode.Accepted, (await admin.PostAsJsonAsync("/api/v1/topics/other/messages", new { body = 1 }, _ct)).StatusCode);

        var leased = (await (await admin.PostAsync("/api/v1/topics/full/subscriptions/slow/pull?max=10", null, _ct)).JsonAsync())["messages"]!.AsArray();
        var leaseIds = leased.Select(m => m!["leaseId"]!.GetValue<string>()).ToArray();
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync("/api/v1/topics/full/subscriptions/slow/ack", new { leaseIds }, _ct)).StatusCode);
        await metrics.RefreshAsync(_ct);
        Assert.Equal(HttpStatusCode.Accepted, (await admin.PostAsJsonAsync("/api/v1/topics/full/messages", new { body = 5 }, _ct)).StatusCode);
    }
}

/// <summary><c>Fundament:Messaging:MaxPageBytes</c>: a pull and a page of dead letters stop at the byte budget, always with at least one message.</summary>
public sealed class MessagingPageBytesTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task APull_AndADeadLetterPage_StopAtTheByteBudget()
    {
        await using var factory = new ConfiguredFundamentFactory([new("Fundament:Messaging:MaxPageBytes", "2500")]);
        using var admin = await factory.AdminAsync();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/topics/big/subscriptions", new { group = "g", maxAttempts = 1 }, _ct)).StatusCode);
        for (var n = 0; n < 5; n++)
        {
            Assert.Equal(HttpStatusCode.Accepted, (await admin.PostAsJsonAsync("/api/v1/topics/big/messages", new { body = new string((char)('a' + n), 1000) }, _ct)).StatusCode);
        }
        var seen = 0;
        while (true)
        {
            var leased = (await (await admin.PostAsync("/api/v1/topics/big/subscriptions/g/pull?max=100", null, _ct)).JsonAsync())["messages"]!.AsArray();
            if (leased.Count == 0)
            {
                break;
            }
            Assert.True(leased.Count <= 2, $"{leased.Count} messages of about 1000 bytes in a 2500-byte page");
            seen += leased.Count;
            var leaseIds = leased.Select(m => m!["leaseId"]!.GetValue<string>()).ToArray();
            Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync("/api/v1/topics/big/subscriptions/g/nack", new { leaseIds, reason = "x" }, _ct)).StatusCode);
        }
        Assert.Equal(5, seen);

        var listed = 0;
        var url = "/api/v1/dead-letters?topic=big&limit=100";
        while (url is not null)
        {
            var response = await admin.GetAsync(url, _ct);
            var page = (await response.JsonAsync()).AsArray();
            Assert.InRange(page.Count, 1, 2);
            listed += page.Count;
            url = response.Headers.TryGetValues("Link", out var links) ? links.Single().Split('<', '>')[1] : null;
        }
        Assert.Equal(5, listed);
    }
}
