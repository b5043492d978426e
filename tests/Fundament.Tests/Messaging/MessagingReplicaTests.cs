using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Messaging;

/// <summary>
/// Two replicas on one PostgreSQL as competing consumers of one group: every message is handled
/// once across both; and the leases a replica handed out survive it: when it goes away, the other
/// hands its unacknowledged messages out again once their leases run out.
/// </summary>
public sealed class MessagingReplicaTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private ReplicaPair _pair = null!;

    public async ValueTask InitializeAsync() => _pair = await ReplicaPair.StartAsync();

    public async ValueTask DisposeAsync()
    {
        if (_pair is not null)
        {
            await _pair.DisposeAsync();
        }
    }

    private async Task<JsonArray> PullAsync(HttpClient client, string topic, int max, string query = "")
    {
        var response = await client.PostAsync($"/api/v1/topics/{topic}/subscriptions/workers/pull?max={max}{query}", null, _ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.JsonAsync())["messages"]!.AsArray();
    }

    [Fact]
    public async Task TwoReplicas_CompetingForOneGroup_HandleEachMessageOnce()
    {
        using var a = await _pair.A.AdminAsync();
        using var b = await _pair.B.AdminAsync();
        const string topic = "orders.placed";
        Assert.Equal(HttpStatusCode.Created, (await a.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "workers" }, _ct)).StatusCode);
        // Published through both replicas, concurrently.
        await Task.WhenAll(Enumerable.Range(0, 200).Select(n => Task.Run(async () =>
            Assert.Equal(HttpStatusCode.Accepted, (await (n % 2 == 0 ? a : b).PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { id = $"m{n}", body = new { n } }, _ct)).StatusCode), _ct)));

        var handled = new ConcurrentBag<int>();
        async Task ConsumeAsync(HttpClient client)
        {
            for (var idle = 0; idle < 3;)
            {
                var leased = await PullAsync(client, topic, 9);
                if (leased.Count == 0)
                {
                    idle++;
                    continue;
                }
                idle = 0;
                foreach (var m in leased)
                {
                    handled.Add(m!["body"]!["n"]!.GetValue<int>());
                }
                var ack = await client.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/workers/ack", new { leaseIds = leased.Select(m => m!["leaseId"]!.GetValue<string>()).ToArray() }, _ct);
                Assert.Equal(leased.Count, (await ack.JsonAsync())["done"]!.GetValue<int>());
            }
        }
        await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(() => ConsumeAsync(i % 2 == 0 ? a : b), _ct)));
        Assert.Equal(Enumerable.Range(0, 200), handled.Order());
    }

    [Fact]
    public async Task MessagesLeasedThroughAReplicaThatWentAway_AreHandedOutByTheOther_AfterTheirLease()
    {
        using var b = await _pair.B.AdminAsync();
        const string topic = "orders.paid";
        using (var a = await _pair.A.AdminAsync())
        {
            Assert.Equal(HttpStatusCode.Created, (await a.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "workers" }, _ct)).StatusCode);
            for (var n = 0; n < 3; n++)
            {
                Assert.Equal(HttpStatusCode.Accepted, (await a.PostAsJsonAsync($"/api/v1/topics/{topic}/messages", new { body = new { n } }, _ct)).StatusCode);
            }
            Assert.Equal(3, (await PullAsync(a, topic, 10, "&lease=30")).Count);
        }
        // Replica A stops with the three leased and unacknowledged; nothing of that lived in its memory.
        await _pair.A.DisposeAsync();
        Assert.Empty(await PullAsync(b, topic, 10));
        _pair.B.Time.Advance(TimeSpan.FromSeconds(31));
        using var later = await _pair.B.AdminAsync();
        var again = await PullAsync(later, topic, 10);
        Assert.Equal([0, 1, 2], again.Select(m => m!["body"]!["n"]!.GetValue<int>()));
        Assert.All(again, m => Assert.Equal(2, m!["attempt"]!.GetValue<int>()));
    }
}
