using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Caching;

/// <summary>
/// The platform cache across nodes: two real replicas on one PostgreSQL and one Redis. A change on
/// one node reaches the other's cached answers through the Redis backplane within a second, while
/// the shared fake clock stands still (so the entries' own expiry never helps).
/// </summary>
public sealed class CacheInvalidationTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task DisablingAUserOnOneNode_EndsItsTokenOnTheOther_WithinOneSecond()
    {
        var redis = TestRedis.Require();
        await using var pair = await ReplicaPair.StartAsync(
            new KeyValuePair<string, string>("Fundament:Redis:Configuration", redis),
            new KeyValuePair<string, string>("Fundament:Redis:KeyPrefix", TestRedis.UniquePrefix()));
        var (id, username) = await pair.A.CreateUserAsync(["user"]);
        var tokens = await pair.A.LoginAsync(username, Api.UserPassword);
        using var adminA = await pair.A.AdminAsync();
        using var onB = pair.B.Bearer(tokens["access_token"]!.GetValue<string>());
        // B has the user's status cached now, for 5 s of wall-clock time: the eviction below must come from A.
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/me", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/me", _ct)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await adminA.PostAsync($"/api/v1/users/{id}/disable", null, _ct)).StatusCode);
        var clock = Stopwatch.StartNew();
        var status = HttpStatusCode.OK;
        while (clock.Elapsed < TimeSpan.FromSeconds(1) && status == HttpStatusCode.OK)
        {
            status = (await onB.GetAsync("/api/v1/me", _ct)).StatusCode;
            if (status == HttpStatusCode.OK)
            {
                await Task.Delay(50, _ct);
            }
        }
        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact]
    public async Task ARoleTakenAwayOnOneNode_IsTakenAwayOnTheOther_WithinOneSecond()
    {
        var redis = TestRedis.Require();
        await using var pair = await ReplicaPair.StartAsync(
            new KeyValuePair<string, string>("Fundament:Redis:Configuration", redis),
            new KeyValuePair<string, string>("Fundament:Redis:KeyPrefix", TestRedis.UniquePrefix()));
        var (id, username) = await pair.A.CreateUserAsync(["user", "admin"]);
        var tokens = await pair.A.LoginAsync(username, Api.UserPassword);
        using var adminA = await pair.A.AdminAsync();
        using var onB = pair.B.Bearer(tokens["access_token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/users", _ct)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await adminA.PatchAsJsonAsync($"/api/v1/users/{id}", new { roles = new[] { "user" } }, _ct)).StatusCode);
        var clock = Stopwatch.StartNew();
        var status = HttpStatusCode.OK;
        while (clock.Elapsed < TimeSpan.FromSeconds(1) && status == HttpStatusCode.OK)
        {
            status = (await onB.GetAsync("/api/v1/users", _ct)).StatusCode;
            if (status == HttpStatusCode.OK)
            {
                await Task.Delay(50, _ct);
            }
        }
        Assert.Equal(HttpStatusCode.Forbidden, status);
    }

    [Fact]
    public async Task AConfigChangeOnOneNode_IsResolvedOnTheOther_WithinOneSecond()
    {
        var redis = TestRedis.Require();
        await using var pair = await ReplicaPair.StartAsync(
            new KeyValuePair<string, string>("Fundament:Redis:Configuration", redis),
            new KeyValuePair<string, string>("Fundament:Redis:KeyPrefix", TestRedis.UniquePrefix()));
        using var adminA = await pair.A.AdminAsync();
        using var adminB = await pair.B.AdminAsync();
        Assert.Equal(HttpStatusCode.OK, (await adminA.PutAsJsonAsync("/api/v1/config/entries", new { service = "orders", environment = "prod", key = "limit", value = 1 }, _ct)).StatusCode);
        // B resolves (and caches, for 5 s of wall-clock time) the first value: the eviction below must come from A.
        Assert.Equal(1, await LimitAsync(adminB));
        Assert.Equal(1, await LimitAsync(adminB));

        // A change to the '*' scope reaches every service's view, and so does one to the service's own.
        Assert.Equal(HttpStatusCode.OK, (await adminA.PutAsJsonAsync("/api/v1/config/entries", new { service = "*", environment = "*", key = "extra", value = true }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await adminA.PutAsJsonAsync("/api/v1/config/entries", new { service = "orders", environment = "prod", key = "limit", value = 2 }, _ct)).StatusCode);
        var clock = Stopwatch.StartNew();
        var limit = 1;
        while (clock.Elapsed < TimeSpan.FromSeconds(1) && limit == 1)
        {
            limit = await LimitAsync(adminB);
            if (limit == 1)
            {
                await Task.Delay(50, _ct);
            }
        }
        Assert.Equal(2, limit);
        var view = await (await adminB.GetAsync("/api/v1/config/resolved?service=orders&environment=prod", _ct)).JsonAsync();
        Assert.True(view["values"]!["extra"]!.GetValue<bool>());
    }

    private async Task<int> LimitAsync(HttpClient client) =>
        (await (await client.GetAsync("/api/v1/config/resolved?service=orders&environment=prod", _ct)).JsonAsync())["values"]!["limit"]!.GetValue<int>();
}
