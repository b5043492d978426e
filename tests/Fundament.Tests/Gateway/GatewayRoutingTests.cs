using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Fundament.Tests.Gateway;

/// <summary>Per-route choices: load balancing, API versions, CORS, body size, header transforms, static routes.</summary>
public sealed class GatewayRoutingTests : GatewayTestBase
{
    private readonly int _staticPort = FreePort();
    private EchoService _second = null!;
    private EchoService _static = null!;

    protected override IEnumerable<KeyValuePair<string, string>> Settings() =>
    [
        new("Fundament:Gateway:Cors:web:AllowedOrigins:0", "https://app.example.com"),
        new("Fundament:Registry:Self:Enabled", "true"),
        new("Fundament:Gateway:Static:Routes:docs:ClusterId", "docs"),
        new("Fundament:Gateway:Static:Routes:docs:Match:Path", "/docs/{**rest}"),
        new("Fundament:Gateway:Static:Routes:docs:AuthorizationPolicy", "anonymous"),
        new("Fundament:Gateway:Static:Routes:private:ClusterId", "docs"),
        new("Fundament:Gateway:Static:Routes:private:Match:Path", "/private/{**rest}"),
        new("Fundament:Gateway:Static:Clusters:docs:Destinations:one:Address", $"http://127.0.0.1:{_staticPort}/"),
    ];

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _second = await EchoService.StartAsync(name: "second");
        _static = await EchoService.StartAsync(_staticPort, name: "static");
    }

    public override async ValueTask DisposeAsync()
    {
        await _second.DisposeAsync();
        await _static.DisposeAsync();
        await base.DisposeAsync();
    }

    private async Task<string> InstanceAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["instance"]!.GetValue<string>();
    }

    [Fact]
    public async Task RoundRobin_AlternatesBetweenInstances()
    {
        object[] routes = [new { path = "/rr/{**rest}", auth = "anonymous", loadBalancing = "roundRobin" }];
        await RegisterAsync("rr", routes, instanceId: "rr-a");
        await RegisterAsync("rr", routes, port: _second.Port, instanceId: "rr-b");
        // Wait until both destinations are in the table.
        for (var i = 0; i < 100 && _second.Requests == 0; i++)
        {
            await EventuallyAsync(() => _gateway.GetAsync("/rr/x", _ct), HttpStatusCode.OK);
        }
        var seen = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            seen.Add(await InstanceAsync(await _gateway.GetAsync("/rr/x", _ct)));
        }
        Assert.Equal(3, seen.Count(s => s == "echo"));
        Assert.Equal(3, seen.Count(s => s == "second"));
        Assert.All(seen.Zip(seen.Skip(1)), pair => Assert.NotEqual(pair.First, pair.Second));
    }

    [Fact]
    public async Task ARoute_GoesOnlyToTheInstancesThatDeclaredIt()
    {
        await RegisterAsync("split", [new { path = "/split/a/{**rest}", auth = "anonymous" }], instanceId: "split-a");
        await RegisterAsync("split", [new { path = "/split/b/{**rest}", auth = "anonymous" }], port: _second.Port, instanceId: "split-b");
        await EventuallyAsync(() => _gateway.GetAsync("/split/b/x", _ct), HttpStatusCode.OK);
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal("echo", await InstanceAsync(await _gateway.GetAsync("/split/a/x", _ct)));
            Assert.Equal("second", await InstanceAsync(await _gateway.GetAsync("/split/b/x", _ct)));
        }
    }

    [Fact]
    public async Task ApiVersions_ByPathOrHeader_GoToInstancesOfThatMajorVersion_AndNoVersionToTheNewest()
    {
        object[] routes = [new { path = "/catalog/{**rest}", stripPrefix = "/catalog", auth = "anonymous" }];
        await RegisterAsync("catalog", routes, version: "1.4.2", instanceId: "catalog-v1");
        await RegisterAsync("catalog", routes, port: _second.Port, version: "2.0.0", instanceId: "catalog-v2");
        var v1 = await EventuallyAsync(() => _gateway.GetAsync("/v1/catalog/items", _ct), HttpStatusCode.OK);
        var body = (await v1.Content.ReadFromJsonAsync<JsonNode>(_ct))!;
        Assert.Equal("echo", body["instance"]!.GetValue<string>());
        Assert.Equal("/items", body["path"]!.GetValue<string>());

        Assert.Equal("second", await InstanceAsync(await _gateway.GetAsync("/v2/catalog/items", _ct)));
        Assert.Equal("echo", await InstanceAsync(await _gateway.SendAsync(Get("/catalog/items", null, ("api-version", "1")), _ct)));
        Assert.Equal("second", await InstanceAsync(await _gateway.SendAsync(Get("/catalog/items", null, ("api-version", "2")), _ct)));
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("second", await InstanceAsync(await _gateway.GetAsync("/catalog/items", _ct)));
        }
        Assert.Equal(HttpStatusCode.NotFound, (await _gateway.GetAsync("/v3/catalog/items", _ct)).StatusCode);
    }

    [Fact]
    public async Task Cors_PreflightIsAnsweredForAllowedOrigins_EvenOnAnAuthenticatedRoute()
    {
        await RegisterAsync("webapi", [new { path = "/webapi/{**rest}", auth = "authenticated", cors = "web" }]);
        await EventuallyAsync(() => _gateway.SendAsync(Get("/webapi/x", _adminToken), _ct), HttpStatusCode.OK);

        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/webapi/x");
        preflight.Headers.Add("Origin", "https://app.example.com");
        preflight.Headers.Add("Access-Control-Request-Method", "PUT");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization");
        var answer = await _gateway.SendAsync(preflight, _ct);
        Assert.Equal(HttpStatusCode.NoContent, answer.StatusCode);
        Assert.Equal("https://app.example.com", answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("PUT", answer.Headers.GetValues("Access-Control-Allow-Methods").Single(), StringComparison.Ordinal);

        var actual = await _gateway.SendAsync(Get("/webapi/x", _adminToken, ("Origin", "https://app.example.com")), _ct);
        Assert.Equal("https://app.example.com", actual.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("X-Request-Id", actual.Headers.GetValues("Access-Control-Expose-Headers").Single(), StringComparison.Ordinal);

        var foreign = await _gateway.SendAsync(Get("/webapi/x", _adminToken, ("Origin", "https://evil.example")), _ct);
        Assert.False(foreign.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task MaxBodySize_RefusesLargerBodiesWith413_BeforeTheUpstream()
    {
        await RegisterAsync("upload", [new { path = "/upload/{**rest}", auth = "anonymous", maxBodySize = 1024 }]);
        await EventuallyAsync(() => _gateway.GetAsync("/upload/x", _ct), HttpStatusCode.OK);
        var before = _upstream.Requests;
        var small = await _gateway.PostAsync("/upload/x", new ByteArrayContent(new byte[1000]), _ct);
        Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        var large = await _gateway.PostAsync("/upload/x", new ByteArrayContent(new byte[4096]), _ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
        Assert.Equal("application/problem+json", large.Content.Headers.ContentType?.MediaType);
        Assert.Equal(1, _upstream.Requests - before);
    }

    [Fact]
    public async Task HeaderAndPathTransforms_AreAppliedPerRoute_AndCannotForgeIdentityHeaders()
    {
        await RegisterAsync("legacy", [new
        {
            path = "/legacy/{**rest}",
            stripPrefix = "/legacy",
            pathPrefix = "/api",
            auth = "anonymous",
            requestHeaders = new Dictionary<string, string?> { ["X-Tenant"] = "acme", ["X-Debug"] = null },
            responseHeaders = new Dictionary<string, string?> { ["X-Frame-Options"] = "DENY" },
        }]);
        // A route that would set the gateway's identity headers is refused at registration, naming the field.
        var forger = await _api.PostAsJsonAsync("/api/v1/registry/instances", new
        {
            service = "forger",
            address = "127.0.0.1",
            port = _upstream.Port,
            routes = new[] { new { path = "/forger/{**rest}", auth = "anonymous", requestHeaders = new Dictionary<string, string?> { ["X-Fundament-User"] = "user:admin" } } },
        }, _ct);
        Assert.Equal(HttpStatusCode.BadRequest, forger.StatusCode);
        Assert.Contains("X-Fundament-User", (await forger.Content.ReadFromJsonAsync<JsonNode>(_ct))!["errors"]!["routes[0].requestHeaders"]![0]!.GetValue<string>(), StringComparison.Ordinal);

        var response = await EventuallyAsync(() => _gateway.SendAsync(Get("/legacy/orders", null, ("X-Debug", "1")), _ct), HttpStatusCode.OK);
        var body = (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!;
        Assert.Equal("/api/orders", body["path"]!.GetValue<string>());
        Assert.Equal("acme", body["headers"]!["x-tenant"]!.GetValue<string>());
        Assert.Null(body["headers"]!["x-debug"]);
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());

        Assert.Equal(HttpStatusCode.NotFound, (await _gateway.GetAsync("/forger/x", _ct)).StatusCode);
    }

    [Fact]
    public async Task StaticRoutes_HoldTheirPaths_AgainstEveryService()
    {
        var response = await _api.PostAsJsonAsync("/api/v1/registry/instances", new
        {
            service = "docs",
            address = "127.0.0.1",
            port = _upstream.Port,
            routes = new[] { new { path = "/docs/{**rest}", auth = "anonymous" } },
        }, _ct);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("static:docs", await response.Content.ReadAsStringAsync(_ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, (await _api.PostAsJsonAsync("/api/v1/registry/route-claims", new { service = "wiki", pathPrefix = "/private/notes" }, _ct)).StatusCode);
        Assert.Equal("static", await InstanceAsync(await _gateway.GetAsync("/docs/readme", _ct)));
    }

    [Fact]
    public async Task StaticRoutes_FromConfiguration_AreServed_AndRequireAuthenticationUnlessOpened()
    {
        Assert.Equal("static", await InstanceAsync(await _gateway.GetAsync("/docs/readme", _ct)));
        var closed = await _gateway.GetAsync("/private/x", _ct);
        Assert.Equal(HttpStatusCode.Unauthorized, closed.StatusCode);
        Assert.Equal("static", await InstanceAsync(await _gateway.SendAsync(Get("/private/x", _adminToken), _ct)));
    }

    [Fact]
    public async Task FundamentsOwnApi_IsExposedThroughTheGateway_LikeAnyService()
    {
        await EventuallyAsync(() => _gateway.GetAsync("/.well-known/openid-configuration", _ct), HttpStatusCode.OK);
        // Anonymous at the edge; the API still enforces its own policies.
        var anonymous = await _gateway.GetAsync("/api/v1/users", _ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _gateway.SendAsync(Get("/api/v1/users", _adminToken), _ct)).StatusCode);
        var login = await _gateway.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = Infrastructure.FundamentFactory.AdminPassword }, _ct);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);

        var instances = await (await _api.GetAsync("/api/v1/registry/services/fundament/instances", _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        var self = Assert.Single(instances!.AsArray());
        Assert.Equal("passing", self!["status"]!.GetValue<string>());
    }
}
