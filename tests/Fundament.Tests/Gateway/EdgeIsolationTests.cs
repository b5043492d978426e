using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Fundament.Tests.Gateway;

/// <summary>
/// One tenant against another, through real gateway ports and real upstream processes: a service
/// cannot take another's paths, and what an upstream receives in place of the caller's credential
/// is useless anywhere else.
/// </summary>
public sealed class EdgeIsolationTests : GatewayTestBase
{
    private EchoService _orders = null!;
    private EchoService _billing = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _orders = await EchoService.StartAsync(name: "orders");
        _billing = await EchoService.StartAsync(name: "billing");
    }

    public override async ValueTask DisposeAsync()
    {
        await _orders.DisposeAsync();
        await _billing.DisposeAsync();
        await base.DisposeAsync();
    }

    /// <summary>A service client with the built-in role <c>service</c>, the way a team would set one up.</summary>
    private async Task<HttpClient> ServiceClientAsync(string name)
    {
        var created = await (await _api.PostAsJsonAsync("/api/v1/clients", new { name, roles = new[] { "service" } }, _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        using var anonymous = new HttpClient { BaseAddress = _api.BaseAddress };
        var token = await (await anonymous.PostAsync("/oauth2/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = created!["client_id"]!.GetValue<string>(),
            ["client_secret"] = created["client_secret"]!.GetValue<string>(),
        }), _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        var client = new HttpClient { BaseAddress = _api.BaseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token!["access_token"]!.GetValue<string>());
        Node.Credentials.Add(token["access_token"]!.GetValue<string>());
        return client;
    }

    private Task<HttpResponseMessage> RegisterAsync(HttpClient client, string service, int port, params object[] routes) =>
        client.PostAsJsonAsync("/api/v1/registry/instances", new { service, address = "127.0.0.1", port, routes }, _ct);

    private static async Task<string> InstanceAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonNode>())!["instance"]!.GetValue<string>();

    [Fact]
    public async Task EveryCaptureVariant_IsRefused_AndOrdersTrafficStillReachesOrders()
    {
        using var orders = await ServiceClientAsync("orders");
        using var billing = await ServiceClientAsync("billing");
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(orders, "orders", _orders.Port, new { path = "/orders/{**rest}", auth = "anonymous" })).StatusCode);

        string[] captures =
        [
            "/orders/{id}", "/orders/{**rest}", "/{**rest}", "/{svc}/{id}", "/api/{**rest}", "/oauth2/token", "/.well-known/{**rest}",
            "/ORDERS/{id}", "/billing%2F..%2Forders/{id}", "/%6Frders/{id}", "//orders/{id}", "/billing/../orders/{id}", "/v1/orders/{id}",
            "/api/{a=/../../billing/}/{**rest}", "/orders/{a=/../../billing/}/{**rest}", "/{x=/../billing/}/{**rest}",
        ];
        foreach (var capture in captures)
        {
            var response = await RegisterAsync(billing, "billing", _billing.Port, new { path = "/billing/{**rest}", auth = "anonymous" }, new { path = capture, auth = "anonymous" });
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{capture}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(_ct)}");
        }
        // Billing may still serve its own paths.
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(billing, "billing", _billing.Port, new { path = "/billing/{**rest}", auth = "anonymous" })).StatusCode);
        Assert.Equal("billing", await InstanceAsync(await EventuallyAsync(() => _gateway.GetAsync("/billing/invoices", _ct), HttpStatusCode.OK)));

        // Every spelling of an orders path reaches orders, and only orders.
        foreach (var path in new[] { "/orders/42", "/ORDERS/42", "/orders//42", "/billing/../orders/42", "/Orders/items?x=1" })
        {
            var response = await _gateway.GetAsync(path, _ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("orders", await InstanceAsync(response));
        }
        Assert.Equal(0, _billing.Requests - 1);
        // Fundament's own paths are not routable by a tenant either.
        Assert.Equal(HttpStatusCode.NotFound, (await _gateway.GetAsync("/api/v1/me", _ct)).StatusCode);
    }

    [Fact]
    public async Task ARevokedClaim_StopsServingItsRoutes_AtTheEdge()
    {
        await ClaimAsync("shop", "/checkout");
        await RegisterAsync("shop", [new { path = "/checkout/{**rest}", auth = "anonymous" }, new { path = "/shop/{**rest}", auth = "anonymous" }], port: _orders.Port);
        await EventuallyAsync(() => _gateway.GetAsync("/checkout/cart", _ct), HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.NoContent, (await _api.DeleteAsync("/api/v1/registry/route-claims?pathPrefix=/checkout&force=true", _ct)).StatusCode);
        await EventuallyAsync(() => _gateway.GetAsync("/checkout/cart", _ct), HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.OK, (await _gateway.GetAsync("/shop/x", _ct)).StatusCode);
        Assert.Contains(_factory.GatewayLog, l => l.Contains("Not serving a route of shop", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ExchangedTokens_WorkAtTheUpstream_AndAreRefusedEverywhereElse()
    {
        await RegisterAsync("orders", [new { path = "/orders/{**rest}", auth = "authenticated" }], port: _orders.Port);
        await RegisterAsync("billing", [new { path = "/billing/{**rest}", auth = "authenticated" }], port: _billing.Port);
        var created = await _api.PostAsJsonAsync("/api/v1/users", new { username = "edge-user", password = Api.UserPassword, roles = new[] { "user" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var userToken = await LoginAsync("edge-user", Api.UserPassword);

        var echoed = await (await EventuallyAsync(() => _gateway.SendAsync(Get("/orders/me", userToken), _ct), HttpStatusCode.OK)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        var authorization = echoed!["headers"]!["authorization"]!.GetValue<string>();
        Assert.StartsWith("Bearer ", authorization, StringComparison.Ordinal);
        var exchanged = authorization["Bearer ".Length..];
        Assert.NotEqual(userToken, exchanged);
        Node.Credentials.Add(exchanged);

        // The upstream verifies it with the JWKS, as any service would, for exactly its own audience.
        var jwks = new JsonWebKeySet(await _api.GetStringAsync("/.well-known/jwks.json", _ct));
        var validation = new TokenValidationParameters
        {
            ValidIssuer = FundamentFactory.Issuer,
            ValidAudience = "service:orders",
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"],
            // The test server's clock is fake; the token's own times are checked below.
            ValidateLifetime = false,
        };
        var handler = new JsonWebTokenHandler { MapInboundClaims = false };
        var result = await handler.ValidateTokenAsync(exchanged, validation);
        Assert.True(result.IsValid, result.Exception?.Message);
        var jwt = new JsonWebToken(exchanged);
        var user = new JsonWebToken(userToken);
        Assert.Equal(user.Subject, jwt.Subject);
        Assert.Equal(user.GetClaim("sid").Value, jwt.GetClaim("sid").Value);
        Assert.Equal("fundament", jwt.GetClaim("client_id").Value);
        Assert.Contains("user", jwt.Claims.Where(c => c.Type == "roles").Select(c => c.Value));
        Assert.Contains("fundament-gateway", jwt.GetClaim("act").Value, StringComparison.Ordinal);
        Assert.InRange((jwt.ValidTo - jwt.IssuedAt).TotalSeconds, 30, 300);
        Assert.True(jwt.ValidTo <= user.ValidTo, "an exchanged token must not outlive the caller's");
        Assert.False((await handler.ValidateTokenAsync(exchanged, new TokenValidationParameters
        {
            ValidIssuer = FundamentFactory.Issuer,
            ValidAudience = "service:billing",
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidateLifetime = false,
        })).IsValid);

        // Captured at the upstream and replayed: Fundament's API and the gateway both refuse it.
        using var replay = new HttpClient { BaseAddress = _api.BaseAddress };
        replay.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", exchanged);
        Assert.Equal(HttpStatusCode.Unauthorized, (await replay.GetAsync("/api/v1/me", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _gateway.SendAsync(Get("/billing/x", exchanged), _ct)).StatusCode);

        // A second request reuses the same token instead of signing a new one.
        var again = await (await _gateway.SendAsync(Get("/orders/me", userToken), _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.Equal(authorization, again!["headers"]!["authorization"]!.GetValue<string>());

        // An API key is never forwarded: the upstream gets a token for its audience instead.
        var key = await ApiKeyAsync();
        var byKey = new HttpRequestMessage(HttpMethod.Get, "/orders/me");
        byKey.Headers.TryAddWithoutValidation("Authorization", "ApiKey " + key);
        var keyed = await (await _gateway.SendAsync(byKey, _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        var keyedAuthorization = keyed!["headers"]!["authorization"]!.GetValue<string>();
        Assert.DoesNotContain(key, keyedAuthorization, StringComparison.Ordinal);
        Assert.Equal("service:orders", new JsonWebToken(keyedAuthorization["Bearer ".Length..]).Audiences.Single());
        Node.Credentials.Add(keyedAuthorization["Bearer ".Length..]);
    }

    [Fact]
    public async Task NoneStripsTheHeader_AndPassthroughForwardsBearerTokensButNeverApiKeys()
    {
        await RegisterAsync("orders", [new { path = "/orders/{**rest}", auth = "authenticated", forwardAuthorization = "none" }], port: _orders.Port);
        await RegisterAsync("billing", [new { path = "/billing/{**rest}", auth = "authenticated", forwardAuthorization = "passthrough" }], port: _billing.Port);

        var none = await (await EventuallyAsync(() => _gateway.SendAsync(Get("/orders/x", _adminToken), _ct), HttpStatusCode.OK)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.Null(none!["headers"]!["authorization"]);
        Assert.StartsWith("user:", none["headers"]!["x-fundament-user"]!.GetValue<string>(), StringComparison.Ordinal);

        var passed = await (await EventuallyAsync(() => _gateway.SendAsync(Get("/billing/x", _adminToken), _ct), HttpStatusCode.OK)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.Equal("Bearer " + _adminToken, passed!["headers"]!["authorization"]!.GetValue<string>());

        var key = await ApiKeyAsync();
        var byKey = new HttpRequestMessage(HttpMethod.Get, "/billing/x");
        byKey.Headers.TryAddWithoutValidation("Authorization", "ApiKey " + key);
        var keyed = await (await _gateway.SendAsync(byKey, _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.Null(keyed!["headers"]!["authorization"]);
    }
}

/// <summary>Two gateways pointed at each other: the request stops after a few hops instead of circling.</summary>
public sealed class GatewayLoopTests
{
    [Fact]
    public async Task GatewaysPointedAtEachOther_AnswerLoopDetected()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var a = await GatewayNode.StartAsync([]);
        await using var b = await GatewayNode.StartAsync([]);
        await a.RegisterAsync("loop", [new { path = "/loop/{**rest}", auth = "anonymous", retries = 0 }], b.GatewayPort);
        await b.RegisterAsync("loop", [new { path = "/loop/{**rest}", auth = "anonymous", retries = 0 }], a.GatewayPort);
        HttpResponseMessage response = null!;
        for (var i = 0; i < 100; i++)
        {
            response = await a.Gateway.GetAsync("/loop/x", ct);
            if (response.StatusCode != HttpStatusCode.NotFound)
            {
                break;
            }
            await Task.Delay(50, ct);
        }
        Assert.Equal(HttpStatusCode.LoopDetected, response.StatusCode);
    }
}
