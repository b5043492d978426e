using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Client.Messaging;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Fundament.Tests.Messaging;

/// <summary>
/// What only the RabbitMQ transport has to show, on a real broker: replicas competing for a group
/// with acks forwarded to the node that holds the delivery, a node killed with SIGKILL, the broker's
/// own dead-lettering (delivery-limit), and a broker that is down.
/// </summary>
public sealed class RabbitMqTransportTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static string Topic() => $"t{Guid.NewGuid():N}"[..14];

    private static void RequireBackends()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        TestRabbitMq.Require();
    }

    internal static async Task<List<JsonNode>> PullAsync(HttpClient client, string topic, string group, int max, double wait, CancellationToken ct)
    {
        var response = await client.PostAsync($"/api/v1/topics/{topic}/subscriptions/{group}/pull?max={max}&wait={wait}&lease=600", null, ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(ct));
        return (await response.JsonAsync())["messages"]!.AsArray().Select(m => m!).ToList();
    }

    internal static async Task<JsonNode> SettleAsync(HttpClient client, string topic, string group, string verb, IEnumerable<JsonNode> leased, CancellationToken ct, object? extra = null)
    {
        var body = new JsonObject { ["leaseIds"] = new JsonArray(leased.Select(l => (JsonNode)JsonValue.Create(l["leaseId"]!.GetValue<string>())).ToArray()) };
        foreach (var (name, value) in extra is null ? [] : System.Text.Json.JsonSerializer.SerializeToNode(extra, System.Text.Json.JsonSerializerOptions.Web)!.AsObject())
        {
            body[name] = value?.DeepClone();
        }
        var response = await client.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/{group}/{verb}", body, ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(ct));
        return await response.JsonAsync();
    }

    [Fact]
    public async Task TwoReplicas_CompeteForAGroup_EachMessageHandledOnce_AndSettlesOnTheOtherReplicaAreForwarded()
    {
        RequireBackends();
        var prefix = TestRabbitMq.UniquePrefix();
        await using var pair = await ReplicaPair.StartAsync(TestRabbitMq.Settings(prefix));
        using var a = await pair.A.AdminAsync();
        using var b = await pair.B.AdminAsync();
        var topic = Topic();
        Assert.Equal(HttpStatusCode.Created, (await a.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "workers" }, _ct)).StatusCode);
        for (var i = 0; i < 120; i++)
        {
            var response = await (i % 2 == 0 ? a : b).PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { id = $"m{i}", body = new { n = i } }, _ct);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        // Four consumers, two on each replica, each settling on the other replica than the one it pulled from.
        var handled = new ConcurrentBag<string>();
        var stale = new ConcurrentBag<string>();
        var forwarded = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        stop.CancelAfter(TimeSpan.FromSeconds(60));
        var consumers = Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
        {
            var (pullFrom, settleOn) = c % 2 == 0 ? (a, b) : (b, a);
            while (handled.Count < 120 && !stop.IsCancellationRequested)
            {
                var leased = await PullAsync(pullFrom, topic, "workers", 7, 1, stop.Token);
                if (leased.Count == 0)
                {
                    continue;
                }
                Interlocked.Add(ref forwarded, leased.Count(m => m["leaseId"]!.GetValue<string>().StartsWith("r.", StringComparison.Ordinal)));
                var settled = await SettleAsync(settleOn, topic, "workers", "ack", leased, stop.Token);
                foreach (var s in settled["stale"]!.AsArray())
                {
                    stale.Add(s!.GetValue<string>());
                }
                foreach (var m in leased)
                {
                    handled.Add(m["id"]!.GetValue<string>());
                }
            }
        }, _ct)).ToList();
        await Task.WhenAll(consumers);

        Assert.Empty(stale);
        // Broker leases (r.<node>...) settled on the other replica: forwarded to the node holding them.
        Assert.True(forwarded > 0, "no lease was a broker lease settled on the other replica");
        Assert.Equal(120, handled.Count);
        Assert.Equal(Enumerable.Range(0, 120).Select(i => $"m{i}").Order(), handled.Order());

        // A nack forwarded to the node holding the lease dead-letters there, with the reason given. First
        // both replicas stop being pushed to (a second after their last pull), so A's basic.get takes it.
        await Task.Delay(TimeSpan.FromSeconds(2), _ct);
        await a.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { id = "poison", body = new { n = -1 } }, _ct);
        var poison = Assert.Single(await PullAsync(a, topic, "workers", 10, 5, _ct));
        Assert.StartsWith("r.", poison["leaseId"]!.GetValue<string>(), StringComparison.Ordinal);
        var nacked = await SettleAsync(b, topic, "workers", "nack", [poison], _ct, new { deadLetter = true, reason = "cannot parse", exceptionType = "FormatException" });
        Assert.Equal(1, nacked["done"]!.GetValue<int>());
        var dead = Assert.Single((await (await b.GetAsync($"/api/v1/dead-letters?topic={topic}&group=workers", _ct)).JsonAsync()).AsArray())!;
        Assert.Equal("poison", dead["messageId"]!.GetValue<string>());
        Assert.Equal("cannot parse", dead["reason"]!.GetValue<string>());
        Assert.Equal("FormatException", dead["exceptionType"]!.GetValue<string>());

        // Replayed on the other replica: served from the database, and acked there.
        Assert.Equal(HttpStatusCode.OK, (await b.PostAsJsonAsync("/api/v1/dead-letters/replay", new { topic, group = "workers", all = true }, _ct)).StatusCode);
        var again = Assert.Single(await PullAsync(b, topic, "workers", 10, 5, _ct));
        Assert.Equal("poison", again["id"]!.GetValue<string>());
        Assert.Equal(1, (await SettleAsync(a, topic, "workers", "ack", [again], _ct))["done"]!.GetValue<int>());
    }

    [Fact]
    public async Task ABrokerLease_SettlesOnlyOnItsOwnGroup_AndAForgedLeaseIdIsStale()
    {
        RequireBackends();
        await using var factory = new RabbitMqReplicaFactory(TestRabbitMq.UniquePrefix());
        await factory.InitializeAsync();
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        foreach (var group in new[] { "mine", "other" })
        {
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group }, _ct)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.Accepted, (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { id = "m1", body = 1 }, _ct)).StatusCode);
        var leased = Assert.Single(await PullAsync(admin, topic, "mine", 1, 0, _ct));
        var leaseId = leased["leaseId"]!.GetValue<string>();
        Assert.StartsWith("r.", leaseId, StringComparison.Ordinal);

        // Another group of the same topic (it has its own copy), a nack that would dead-letter, a forged id on this node and on a node that does not exist.
        var wrongGroup = await SettleAsync(admin, topic, "other", "nack", [leased], _ct, new { deadLetter = true });
        Assert.Equal(0, wrongGroup["done"]!.GetValue<int>());
        var forged = new[] { leaseId[..^1] + (leaseId[^1] == '0' ? '1' : '0'), "r.000000000000.000000000000000000000000", "r.zz.not-hex" }
            .Select(id => (JsonNode)new JsonObject { ["leaseId"] = id }).ToList();
        var stale = await SettleAsync(admin, topic, "mine", "ack", forged, _ct);
        Assert.Equal(0, stale["done"]!.GetValue<int>());
        Assert.Equal(3, stale["stale"]!.AsArray().Count);
        Assert.Empty((await (await admin.GetAsync($"/api/v1/dead-letters?topic={topic}", _ct)).JsonAsync()).AsArray());

        // The lease still holds on its own group.
        Assert.Equal(1, (await SettleAsync(admin, topic, "mine", "ack", [leased], _ct))["done"]!.GetValue<int>());
        Assert.Equal("m1", Assert.Single(await PullAsync(admin, topic, "other", 1, 0, _ct))["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task ANodeKilledWithSigkill_WhileHoldingLeases_ItsMessagesAreHandedOutAgainByTheBroker()
    {
        RequireBackends();
        var prefix = TestRabbitMq.UniquePrefix();
        await using var survivor = new RabbitMqReplicaFactory(prefix);
        await survivor.InitializeAsync();
        using var admin = await survivor.AdminAsync();
        var topic = Topic();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "g" }, _ct)).StatusCode);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Accepted, (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { id = $"m{i}", body = new { n = i } }, _ct)).StatusCode);
        }

        // The real fundament process on the same database and broker takes all five under 10-minute leases, then dies.
        var port = TestPorts.Next();
        using var doomed = ChildProcess.StartDotnet(Path.Combine(AppContext.BaseDirectory, "fundament.dll"),
            survivor.Environment().Concat(new Dictionary<string, string>
            {
                ["Fundament__DataDir"] = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N")),
                ["Fundament__Gateway__Urls"] = $"http://127.0.0.1:{TestPorts.Next()}",
                ["Logging__LogLevel__Default"] = "Warning",
            }),
            ["--urls", $"http://127.0.0.1:{port}"], workingDirectory: Path.GetTempPath());
        try
        {
            using var remote = await ChildProcess.SignedInAsync(port, FundamentFactory.AdminPassword, _ct);
            var taken = new List<JsonNode>();
            for (var i = 0; i < 20 && taken.Count < 5; i++)
            {
                taken.AddRange(await PullAsync(remote, topic, "g", 5, 1, _ct));
            }
            Assert.Equal(5, taken.Count);
            Assert.Empty(await PullAsync(admin, topic, "g", 5, 0, _ct));
        }
        finally
        {
            doomed.Kill(entireProcessTree: true);
            await doomed.WaitForExitAsync(_ct);
        }

        // No clock moved: the broker saw the connection die and hands the deliveries to the survivor at once.
        var again = new List<JsonNode>();
        for (var i = 0; i < 60 && again.Count < 5; i++)
        {
            again.AddRange(await PullAsync(admin, topic, "g", 5, 1, _ct));
        }
        Assert.Equal(["m0", "m1", "m2", "m3", "m4"], again.Select(m => m["id"]!.GetValue<string>()).Order());
        Assert.Equal(5, (await SettleAsync(admin, topic, "g", "ack", again, _ct))["done"]!.GetValue<int>());
    }

    [Fact]
    public async Task AMessageWhoseNodesKeepDying_IsDeadLetteredByTheBroker_IntoTheGroupsDeadLetters()
    {
        RequireBackends();
        var prefix = TestRabbitMq.UniquePrefix();
        var topic = Topic();
        var database = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
        try
        {
            KeyValuePair<string, string>[] settings =
            [
                .. RabbitMqReplicaFactory.DatabaseSettings(database),
                .. TestRabbitMq.Settings(prefix),
                new("Fundament:Messaging:RabbitMq:DeliveryLimit", "1"),
            ];
            var deliveries = 0;
            for (var round = 0; round < 4; round++)
            {
                // Each node takes the message and goes away without settling it: the broker counts a lost delivery.
                await using var node = new ConfiguredFundamentFactory(settings);
                using var admin = await node.AdminAsync();
                if (round == 0)
                {
                    Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "g", maxAttempts = 50 }, _ct)).StatusCode);
                    Assert.Equal(HttpStatusCode.Accepted, (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { id = "cursed", body = new { n = 1 } }, _ct)).StatusCode);
                }
                var leased = await PullAsync(admin, topic, "g", 1, 2, _ct);
                if (leased.Count == 0)
                {
                    break;
                }
                deliveries++;
            }
            Assert.InRange(deliveries, 1, 2);

            await using var last = new ConfiguredFundamentFactory(settings);
            using var reader = await last.AdminAsync();
            JsonArray dead = [];
            for (var i = 0; i < 100 && dead.Count == 0; i++)
            {
                dead = (await (await reader.GetAsync($"/api/v1/dead-letters?topic={topic}&group=g", _ct)).JsonAsync()).AsArray();
                if (dead.Count == 0)
                {
                    await Task.Delay(100, _ct);
                }
            }
            var letter = Assert.Single(dead)!;
            Assert.Equal("cursed", letter["messageId"]!.GetValue<string>());
            Assert.Contains("RabbitMQ dead-lettered it (delivery_limit)", letter["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        }
        finally
        {
            await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, database);
        }
    }

    [Fact]
    public async Task ABrokerThatIsDown_Is503_AndChangesNothing()
    {
        RequireBackends();
        await using var factory = new PostgresFundamentFactory
        {
            Extra =
            [
                new("Fundament:Messaging:RabbitMq:Uri", $"amqp://guest:guest@127.0.0.1:{TestPorts.Next()}/"),
                new("Fundament:Messaging:RabbitMq:PublishTimeout", "00:00:02"),
            ],
        };
        await factory.InitializeAsync();
        using var admin = await factory.AdminAsync();
        var topic = Topic();
        var create = await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "g" }, _ct);
        await create.AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync($"/api/v1/topics/{topic}/subscriptions/g", _ct)).StatusCode);
        var publish = await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { id = "x", body = 1 }, _ct);
        await publish.AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Equal("1", publish.Headers.RetryAfter?.ToString());

        // What the database holds for a group (a retry, a replay, an event published in a unit of work)
        // is still handed out while the broker is away, not leased and lost behind a 503.
        var store = factory.Services.GetRequiredService<Fundament.Messaging.Storage.MessageStore>();
        var group = new Fundament.Messaging.Storage.GroupDefinition
        {
            Topic = topic, Name = "kept", MaxAttempts = 5, BackoffInitialMs = 1000, BackoffMaxMs = 1000, Ordered = 0, DeadLetter = 1,
            CreatedAt = factory.Time.GetUtcNow().ToUnixTimeMilliseconds(), CreatedBy = null,
        };
        await store.CreateGroupAsync(group, 100, _ct);
        await store.PublishAsync([(topic, new Fundament.Messaging.Storage.OutgoingMessage("in-db", null, "{\"n\":1}", null), null)], _ct);
        var pulled = await admin.PostAsync($"/api/v1/topics/{topic}/subscriptions/kept/pull?max=10", null, _ct);
        Assert.Equal(HttpStatusCode.OK, pulled.StatusCode);
        Assert.Equal("in-db", Assert.Single((await pulled.JsonAsync())["messages"]!.AsArray())!["id"]!.GetValue<string>());
    }

}

/// <summary>
/// Restarts the shared test broker mid-run: alone, so no other suite sees it go away.
/// </summary>
[Collection(nameof(RabbitMqRestartCollection))]
public sealed class RabbitMqRestartTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task ABrokerRestart_MidRun_LosesNoAcknowledgedMessage()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        TestRabbitMq.Require();
        await using var factory = new RabbitMqReplicaFactory(TestRabbitMq.UniquePrefix());
        await factory.InitializeAsync();
        using var admin = await factory.AdminAsync();
        var topic = $"t{Guid.NewGuid():N}"[..14];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "g" }, _ct)).StatusCode);

        var acknowledged = new ConcurrentDictionary<string, byte>();
        var handled = new ConcurrentDictionary<string, int>();
        using var publishing = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        var publisher = Task.Run(async () =>
        {
            for (var i = 0; i < 400; i++)
            {
                // Not acknowledged (a 503 while the broker is away): sent again with the same id.
                while (true)
                {
                    try
                    {
                        var response = await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { id = $"m{i}", body = new { n = i } }, _ct);
                        if (response.StatusCode == HttpStatusCode.Accepted)
                        {
                            acknowledged[$"m{i}"] = 0;
                            break;
                        }
                        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                    }
                    catch (HttpRequestException)
                    {
                    }
                    await Task.Delay(100, _ct);
                }
            }
        }, _ct);
        using var consuming = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        var consumer = Task.Run(async () =>
        {
            while (!consuming.IsCancellationRequested)
            {
                try
                {
                    var response = await admin.PostAsync($"/api/v1/topics/{topic}/subscriptions/g/pull?max=50&wait=1", null, consuming.Token);
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        await Task.Delay(100, consuming.Token);
                        continue;
                    }
                    var leased = (await response.JsonAsync())["messages"]!.AsArray().Select(m => m!).ToList();
                    if (leased.Count > 0)
                    {
                        await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/g/ack",
                            new { leaseIds = leased.Select(l => l["leaseId"]!.GetValue<string>()).ToArray() }, consuming.Token);
                        foreach (var m in leased)
                        {
                            handled.AddOrUpdate(m["id"]!.GetValue<string>(), 1, (_, n) => n + 1);
                        }
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
                {
                }
            }
        }, _ct);

        while (acknowledged.Count < 100 && !publisher.IsCompleted)
        {
            await Task.Delay(20, _ct);
        }
        Assert.False(publisher.IsFaulted, publisher.Exception?.ToString());
        await TestRabbitMq.CtlAsync("stop_app", _ct);
        await Task.Delay(TimeSpan.FromSeconds(2), _ct);
        await TestRabbitMq.CtlAsync("start_app", _ct);
        await publisher.WaitAsync(TimeSpan.FromSeconds(120), _ct);

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (acknowledged.Keys.Any(id => !handled.ContainsKey(id)) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, _ct);
        }
        await consuming.CancelAsync();
        await consumer;

        // Publishes during the restart either waited inside PublishTimeout for the broker to come back, or were refused (503) and sent again.
        Assert.Equal(400, acknowledged.Count);
        Assert.DoesNotContain(acknowledged.Keys, id => !handled.ContainsKey(id));
        // Nothing that was never published arrived.
        Assert.DoesNotContain(handled.Keys, id => !acknowledged.ContainsKey(id));
    }
}

/// <summary>The SDK's publisher across a broker restart: the server answers 503 while its broker is away, and the SDK publishes again (same id) until it is back.</summary>
[Collection(nameof(RabbitMqRestartCollection))]
public sealed class RabbitMqSdkRestartTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheSdkPublisher_RidesOutABrokerRestart_AndEveryMessageArrives()
    {
        TestRabbitMq.Require();
        await using var factory = new KestrelFundamentFactory
        {
            // A short confirm budget, so the server answers 503 during the restart rather than waiting it out.
            Extra = [.. TestRabbitMq.Settings(), new("Fundament:Messaging:RabbitMq:PublishTimeout", "00:00:01")],
        };
        using var admin = await factory.AdminAsync();
        var topic = $"sdk{Guid.NewGuid():N}"[..12];
        var builder = await factory.ServiceBuilderAsync(admin, $"publisher-{topic}",
            principal => new { principal, topicPrefix = topic, capabilities = new[] { "publish", "consume" } }, "/api/v1/topic-grants");
        builder.AddFundamentBus();
        using var host = builder.Build();
        var bus = host.Services.GetRequiredService<Fundament.Client.Messaging.IFundamentBus>();
        await bus.EnsureGroupAsync(new Fundament.Client.Messaging.ConsumerGroupSettings(topic, "g"), _ct);

        var published = new List<string>();
        var restart = Task.CompletedTask;
        for (var i = 0; i < 120; i++)
        {
            if (i == 20)
            {
                restart = Task.Run(async () =>
                {
                    await TestRabbitMq.CtlAsync("stop_app", _ct);
                    await Task.Delay(TimeSpan.FromSeconds(3), _ct);
                    await TestRabbitMq.CtlAsync("start_app", _ct);
                }, _ct);
            }
            // No exception: a 503 is retried inside the call, with the same id.
            var receipt = await bus.PublishAsync(topic, new { n = i }, new Fundament.Client.Messaging.PublishOptions(Id: $"m{i}"), _ct);
            published.Add(receipt.Id);
            await Task.Delay(25, _ct);
        }
        await restart;

        var received = new Dictionary<string, int>();
        for (var round = 0; round < 60 && received.Count < published.Count; round++)
        {
            var batch = await bus.PullAsync(topic, "g", 100, TimeSpan.FromSeconds(1), cancellationToken: _ct);
            foreach (var m in batch)
            {
                received[m.Id] = received.GetValueOrDefault(m.Id) + 1;
            }
            if (batch.Count > 0)
            {
                await bus.AckAsync(topic, "g", batch.Select(m => m.LeaseId).ToList(), _ct);
            }
        }
        Assert.Equal(published.Order(), received.Keys.Order());
    }
}

[CollectionDefinition(nameof(RabbitMqRestartCollection), DisableParallelization = true)]
public sealed class RabbitMqRestartCollection;

/// <summary>A server on its own PostgreSQL database and the test broker, whose settings another (in-process or a real process) can share.</summary>
public sealed class RabbitMqReplicaFactory(string prefix) : FundamentFactory
{
    private readonly string _masterKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
    private string? _database;

    public static KeyValuePair<string, string>[] DatabaseSettings(string connectionString) =>
    [
        new("Fundament:Storage:Provider", "postgres"),
        new("ConnectionStrings:Fundament", connectionString),
        new("Fundament:MasterKey", Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))),
    ];

    public override async ValueTask InitializeAsync() => _database = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);

    protected override IEnumerable<KeyValuePair<string, string>> Settings() =>
    [
        new("Fundament:Storage:Provider", "postgres"),
        new("ConnectionStrings:Fundament", _database!),
        new("Fundament:MasterKey", _masterKey),
        new("Fundament:Identity:Issuer", Issuer),
        .. TestRabbitMq.Settings(prefix),
    ];

    /// <summary>The same settings as environment variables, for a real <c>fundament</c> process.</summary>
    public IEnumerable<KeyValuePair<string, string>> Environment() =>
        Settings().Select(s => new KeyValuePair<string, string>(s.Key.Replace(":", "__", StringComparison.Ordinal), s.Value))
            .Append(new("Fundament__Identity__PasswordHashIterations", "10000"));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_database is not null)
        {
            await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, _database);
        }
    }
}
