using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Gateway;

/// <summary>The gateway on a real port, fed by the registry, in front of a real upstream.</summary>
public sealed class GatewayTests : GatewayTestBase
{
    protected override IEnumerable<KeyValuePair<string, string>> Settings() =>
    [
        new("Fundament:Gateway:RateLimits:five-per-10s:Algorithm", "fixed"),
        new("Fundament:Gateway:RateLimits:five-per-10s:PermitLimit", "5"),
        new("Fundament:Gateway:RateLimits:five-per-10s:Window", "00:00:10"),
        new("Fundament:Gateway:RateLimits:five-per-10s:PartitionBy", "global"),
    ];

    [Fact]
    public async Task Route_AppearsOnRegistration_StripsItsPrefix_AndDisappearsOnDeregistration()
    {
        var id = await RegisterAsync("orders", [new { path = "/orders/{**rest}", stripPrefix = "/orders", auth = "anonymous" }]);
        var response = await EventuallyAsync(() => _gateway.GetAsync("/orders/items?page=2", _ct), HttpStatusCode.OK);
        var echoed = await response.Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.Equal("/items?page=2", echoed!["path"]!.GetValue<string>());
        Assert.True(response.Headers.Contains("X-Request-Id"));
        Assert.False(string.IsNullOrEmpty(echoed["headers"]!["traceparent"]?.GetValue<string>()), "traceparent was not propagated");

        Assert.Equal(HttpStatusCode.NoContent, (await _api.DeleteAsync($"/api/v1/registry/instances/{id}", _ct)).StatusCode);
        var gone = await EventuallyAsync(() => _gateway.GetAsync("/orders/items", _ct), HttpStatusCode.NotFound);
        Assert.Equal("application/problem+json", gone.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task RoutePolicies_AnonymousAuthenticatedRole_AndForgedTokensAre401()
    {
        await ClaimAsync("billing", "/billing-admin");
        await RegisterAsync("billing", [
            new { path = "/billing/{**rest}", auth = "authenticated" },
            new { path = "/billing-admin/{**rest}", auth = "role:admin" },
        ]);
        await EventuallyAsync(() => _gateway.SendAsync(Get("/billing/x", _adminToken), _ct), HttpStatusCode.OK);

        var none = await _gateway.GetAsync("/billing/x", _ct);
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal("application/problem+json", none.Content.Headers.ContentType?.MediaType);
        var parts = _adminToken.Split('.');
        var algNone = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode("{\"alg\":\"none\",\"typ\":\"at+jwt\"}") + "." + parts[1] + ".";
        Assert.Equal(HttpStatusCode.Unauthorized, (await _gateway.SendAsync(Get("/billing/x", algNone), _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _gateway.SendAsync(Get("/billing/x", parts[0] + "." + parts[1] + ".AAAA"), _ct)).StatusCode);

        // A plain user may use the authenticated route, not the admin one.
        var userCreated = await _api.PostAsJsonAsync("/api/v1/users", new { username = "gateway-user", password = Api.UserPassword, roles = new[] { "user" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, userCreated.StatusCode);
        var userToken = await LoginAsync("gateway-user", Api.UserPassword);
        Assert.Equal(HttpStatusCode.OK, (await _gateway.SendAsync(Get("/billing/x", userToken), _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await _gateway.SendAsync(Get("/billing-admin/x", userToken), _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _gateway.SendAsync(Get("/billing-admin/x", _adminToken), _ct)).StatusCode);
    }

    public static TheoryData<string> Forgeries() => TokenForgery.Kinds();

    [Theory]
    [MemberData(nameof(Forgeries))]
    public async Task ForgedTokens_Are401ProblemsOnProtectedRoutes_EvenAfterTheGenuineTokenWasCached(string forgery)
    {
        await RegisterAsync("guarded", [new { path = "/guarded/{**rest}", auth = "authenticated" }]);
        // The genuine token is validated (and remembered) first, so a cache keyed loosely would let forgeries in.
        await EventuallyAsync(() => _gateway.SendAsync(Get("/guarded/x", _adminToken), _ct), HttpStatusCode.OK);
        var before = _upstream.Requests;
        var forged = await TokenForgery.ForgeAsync(_factory, _api, forgery, _adminToken, _ct);
        var response = await _gateway.SendAsync(Get("/guarded/x", forged), _ct);
        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{forgery}: {(int)response.StatusCode}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(before, _upstream.Requests);
    }

    [Fact]
    public async Task ApiKeys_AreAcceptedAtTheEdge_AndUnknownKeysAre401()
    {
        await RegisterAsync("keyed", [new { path = "/keyed/{**rest}", auth = "role:admin" }]);
        var key = await ApiKeyAsync();
        var response = await EventuallyAsync(() => _gateway.SendAsync(Get("/keyed/x", null, ("Authorization", "ApiKey " + key)), _ct), HttpStatusCode.OK);
        var headers = (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["headers"]!;
        Assert.StartsWith("user:", headers["x-fundament-user"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Unauthorized, (await _gateway.SendAsync(Get("/keyed/x", null, ("Authorization", "ApiKey fk_not-a-real-key")), _ct)).StatusCode);
    }

    [Fact]
    public async Task SpoofedIdentityHeaders_NeverReachTheUpstream()
    {
        await RegisterAsync("profile", [new { path = "/profile/{**rest}", auth = "authenticated" }]);
        var response = await EventuallyAsync(
            () => _gateway.SendAsync(Get("/profile/me", _adminToken, ("X-Fundament-User", "user:someone-else"), ("X-Fundament-Roles", "admin"), ("X-Fundament-Anything", "x")), _ct),
            HttpStatusCode.OK);
        var headers = (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["headers"]!;
        Assert.StartsWith("user:", headers["x-fundament-user"]!.GetValue<string>());
        Assert.NotEqual("user:someone-else", headers["x-fundament-user"]!.GetValue<string>());
        Assert.Equal("admin", headers["x-fundament-roles"]!.GetValue<string>());
        Assert.Null(headers["x-fundament-anything"]);

        var anonymousRoute = await RegisterAsync("open", [new { path = "/open/{**rest}", auth = "anonymous" }]);
        var open = await EventuallyAsync(() => _gateway.SendAsync(Get("/open/x", null, ("X-Fundament-User", "user:admin")), _ct), HttpStatusCode.OK);
        Assert.Null((await open.Content.ReadFromJsonAsync<JsonNode>(_ct))!["headers"]!["x-fundament-user"]);
        _ = anonymousRoute;
    }

    [Fact]
    public async Task NoPassingInstance_Is503_AndTheApiIsNotServedOnTheGatewayPort()
    {
        var id = await RegisterAsync("flaky", [new { path = "/flaky/{**rest}", auth = "anonymous" }], new { ttl = "30s" });
        await EventuallyAsync(() => _gateway.GetAsync("/flaky/x", _ct), HttpStatusCode.OK);
        (await _api.PutAsJsonAsync($"/api/v1/registry/instances/{id}/heartbeat", new { status = "critical" }, _ct)).EnsureSuccessStatusCode();
        var unavailable = await EventuallyAsync(() => _gateway.GetAsync("/flaky/x", _ct), HttpStatusCode.ServiceUnavailable);
        Assert.Equal("application/problem+json", unavailable.Content.Headers.ContentType?.MediaType);

        Assert.Equal(HttpStatusCode.NotFound, (await _gateway.GetAsync("/api/v1/users", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _gateway.GetAsync("/metrics", _ct)).StatusCode);
    }

    [Fact]
    public async Task AccessLog_HasOneLinePerRequest_AndNoCredentials()
    {
        await RegisterAsync("logged", [new { path = "/logged/{**rest}", auth = "authenticated" }]);
        await EventuallyAsync(() => _gateway.SendAsync(Get("/logged/a", _adminToken, ("Cookie", "session=cookie-secret-value")), _ct), HttpStatusCode.OK);
        var lines = _factory.GatewayLog.Where(l => l.Contains("/logged/a", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(lines);
        Assert.Contains(lines, l => l.Contains("service=logged", StringComparison.Ordinal) && l.Contains("status=200", StringComparison.Ordinal) && l.Contains("user=user:", StringComparison.Ordinal));
        var all = string.Join("\n", _factory.GatewayLog);
        Assert.DoesNotContain(_adminToken, all, StringComparison.Ordinal);
        Assert.DoesNotContain(_adminToken.Split('.')[2], all, StringComparison.Ordinal);
        Assert.DoesNotContain("cookie-secret-value", all, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RateLimit_FivePerTenSeconds_GivesExactlyFiveThen429WithHeaders()
    {
        // An unlimited probe route arrives in the same table update, so waiting on it spends none of the budget.
        await ClaimAsync("limited", "/limited-probe");
        await RegisterAsync("limited", [
            new { path = "/limited/{**rest}", auth = "anonymous", rateLimit = "five-per-10s" },
            new { path = "/limited-probe/{**rest}", auth = "anonymous" },
        ]);
        await EventuallyAsync(() => _gateway.GetAsync("/limited-probe/x", _ct), HttpStatusCode.OK);
        var before = _upstream.Requests;
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 8; i++)
        {
            var response = await _gateway.GetAsync($"/limited/{i}", _ct);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                refused ??= response;
            }
        }
        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 3)], statuses);
        Assert.Equal("application/problem+json", refused!.Content.Headers.ContentType?.MediaType);
        Assert.InRange(int.Parse(refused.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture), 1, 10);
        Assert.Equal("\"five-per-10s\";q=5;w=10", refused.Headers.GetValues("RateLimit-Policy").Single());
        Assert.Equal(5, _upstream.Requests - before);
    }
}
