using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Gateway;

/// <summary>
/// Rate-limit and CORS policies as runtime data: created, changed and deleted through the API
/// (audited), applied by the gateway without a restart, with configuration seeds read-only.
/// </summary>
public sealed class GatewayPolicyTests : GatewayTestBase
{
    protected override IEnumerable<KeyValuePair<string, string>> Settings() =>
    [
        new("Fundament:Gateway:RateLimits:seeded:PermitLimit", "50"),
        new("Fundament:Gateway:RateLimits:seeded:PartitionBy", "global"),
    ];

    private Task<HttpResponseMessage> PutRateLimitAsync(string name, object body) => _api.PutAsJsonAsync($"/api/v1/gateway/policies/rate-limit/{name}", body, _ct);

    [Fact]
    public async Task APolicyChange_ReachesTheGateway_WithoutARestart()
    {
        var created = await PutRateLimitAsync("two", new { permitLimit = 2, window = "1m", partitionBy = "global" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var policy = await created.JsonAsync();
        Assert.Equal("api", policy["source"]!.GetValue<string>());
        Assert.Equal("1m", policy["rateLimit"]!["window"]!.GetValue<string>());

        await ClaimAsync("metered", "/metered-probe");
        await RegisterAsync("metered", [new { path = "/metered/{**rest}", auth = "anonymous", rateLimit = "two" }, new { path = "/metered-probe/{**rest}", auth = "anonymous" }]);
        await EventuallyAsync(() => _gateway.GetAsync("/metered-probe/x", _ct), HttpStatusCode.OK);
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], await BurstAsync(3));

        // Four per minute now: the changed policy starts with fresh counts on the running gateway.
        var changed = await PutRateLimitAsync("two", new { permitLimit = 4, window = "1m", partitionBy = "global" });
        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
        Assert.True((await changed.JsonAsync())["version"]!.GetValue<long>() > policy["version"]!.GetValue<long>());
        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 4), HttpStatusCode.TooManyRequests], await BurstAsync(5));

        // In use: deleting it would leave the route without its limit.
        var inUse = await _api.DeleteAsync("/api/v1/gateway/policies/rate-limit/two", _ct);
        await inUse.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Equal(["metered"], (await inUse.JsonAsync())["services"]!.AsArray().Select(s => s!.GetValue<string>()));

        var audit = (await (await _api.GetAsync("/api/v1/audit?action=gateway.policy.", _ct)).JsonAsync())["items"]!.AsArray();
        Assert.Contains(audit, e => e!["action"]!.GetValue<string>() == "gateway.policy.create" && e["target"]!.GetValue<string>() == "gateway_policy:rate-limit/two");
        Assert.Contains(audit, e => e!["action"]!.GetValue<string>() == "gateway.policy.update");
    }

    private async Task<List<HttpStatusCode>> BurstAsync(int count)
    {
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < count; i++)
        {
            statuses.Add((await _gateway.GetAsync($"/metered/{i}", _ct)).StatusCode);
        }
        return statuses;
    }

    [Fact]
    public async Task ACorsPolicy_CreatedThroughTheApi_AnswersPreflights()
    {
        var created = await _api.PutAsJsonAsync("/api/v1/gateway/policies/cors/portal", new { allowedOrigins = new[] { "https://portal.example.com" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        await RegisterAsync("portal", [new { path = "/portal/{**rest}", auth = "authenticated", cors = "portal" }]);
        var answer = await EventuallyAsync(async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Options, "/portal/data");
            request.Headers.Add("Origin", "https://portal.example.com");
            request.Headers.Add("Access-Control-Request-Method", "GET");
            return await _gateway.SendAsync(request, _ct);
        }, HttpStatusCode.NoContent);
        Assert.Equal("https://portal.example.com", answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task Seeds_AreReadOnly_AndBadPoliciesAre400WithEveryField()
    {
        var list = (await (await _api.GetAsync("/api/v1/gateway/policies", _ct)).JsonAsync()).AsArray();
        var seeded = list.Single(p => p!["name"]!.GetValue<string>() == "seeded")!;
        Assert.Equal("config", seeded["source"]!.GetValue<string>());
        Assert.Equal(50, seeded["rateLimit"]!["permitLimit"]!.GetValue<int>());
        await (await PutRateLimitAsync("seeded", new { permitLimit = 1 })).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await _api.DeleteAsync("/api/v1/gateway/policies/rate-limit/seeded", _ct)).AssertProblemAsync(HttpStatusCode.Conflict);

        var bad = await PutRateLimitAsync("bad", new { algorithm = "leaky", permitLimit = 0, window = "soon", partitionBy = "moon" });
        await bad.AssertProblemAsync(HttpStatusCode.BadRequest);
        var errors = (await bad.JsonAsync())["errors"]!.AsObject();
        Assert.Equal(["algorithm", "partitionBy", "permitLimit", "window"], errors.Select(e => e.Key).Order(StringComparer.Ordinal));
        var badCors = await _api.PutAsJsonAsync("/api/v1/gateway/policies/cors/bad", new { allowedOrigins = new[] { "*" }, allowCredentials = true }, _ct);
        await badCors.AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await PutRateLimitAsync("default", new { permitLimit = 1 })).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await _api.GetAsync("/api/v1/gateway/policies/rate-limit/bad", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task OnlyGatewayWrite_MayChangePolicies()
    {
        var created = await _api.PostAsJsonAsync("/api/v1/users", new { username = "policy-reader", password = Api.UserPassword, roles = new[] { "user" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var token = await LoginAsync("policy-reader", Api.UserPassword);
        using var user = new HttpClient { BaseAddress = _api.BaseAddress };
        user.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PutAsJsonAsync("/api/v1/gateway/policies/rate-limit/mine", new { permitLimit = 1000000 }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync("/api/v1/gateway/policies", _ct)).StatusCode);
    }
}

/// <summary>Policies are shared by every node: created on one, enforced by the other's gateway.</summary>
public sealed class GatewayPolicyReplicaTests
{
    [Fact]
    public async Task APolicyCreatedOnOneNode_IsUsedByTheOther()
    {
        var ct = TestContext.Current.CancellationToken;
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        var connectionString = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
        KeyValuePair<string, string>[] shared =
        [
            new("Fundament:Storage:Provider", "postgres"),
            new("ConnectionStrings:Fundament", connectionString),
            new("Fundament:MasterKey", Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))),
        ];
        await using var upstream = await EchoService.StartAsync();
        try
        {
            await using var a = await GatewayNode.StartAsync(shared);
            await using var b = await GatewayNode.StartAsync(shared);
            Assert.Equal(HttpStatusCode.Created, (await a.Api.PutAsJsonAsync("/api/v1/gateway/policies/rate-limit/one", new { permitLimit = 1, window = "1m", partitionBy = "global" }, ct)).StatusCode);
            // Registered through B, which has not polled yet: it finds the policy in the store.
            await b.RegisterAsync("single", [new { path = "/single/{**rest}", auth = "anonymous", rateLimit = "one" }], upstream.Port);
            HttpResponseMessage first = null!;
            for (var i = 0; i < 100; i++)
            {
                first = await b.Gateway.GetAsync("/single/x", ct);
                if (first.StatusCode != HttpStatusCode.NotFound)
                {
                    break;
                }
                await Task.Delay(50, ct);
            }
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal(HttpStatusCode.TooManyRequests, (await b.Gateway.GetAsync("/single/x", ct)).StatusCode);
        }
        finally
        {
            await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, connectionString);
        }
    }
}
