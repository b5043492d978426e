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
}
