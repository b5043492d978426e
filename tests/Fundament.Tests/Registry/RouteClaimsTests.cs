using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Registry;

/// <summary>
/// Route ownership through the API: who holds which gateway paths, and that a registration whose
/// routes leave its service's claims is refused with a 403 naming each route, before anything is
/// stored. The gateway-side behaviour (traffic still reaching its owner) is in EdgeIsolationTests.
/// </summary>
public abstract class RouteClaimsTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static string Svc() => "svc" + Guid.NewGuid().ToString("N")[..10];

    private async Task<HttpResponseMessage> RegisterAsync(HttpClient client, string service, params object[] routes) =>
        await client.PostAsJsonAsync("/api/v1/registry/instances", new { service, address = "127.0.0.1", port = 9400, routes }, _ct);

    private async Task<JsonNode> AuditAsync(HttpClient admin, string action) =>
        await (await admin.GetAsync($"/api/v1/audit?action={action}&limit=20", _ct)).JsonAsync();

    [Fact]
    public async Task Claim_IsCreatedListedAndDeleted_AndEveryChangeIsAudited()
    {
        using var admin = await factory.AdminAsync();
        var service = Svc();
        var prefix = "/" + Svc();
        var created = await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service, pathPrefix = prefix.ToUpperInvariant() + "//" }, _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var claim = await created.JsonAsync();
        // Stored in normal form: the gateway matches paths case-insensitively.
        Assert.Equal(prefix, claim["pathPrefix"]!.GetValue<string>());
        Assert.Equal("claim", claim["source"]!.GetValue<string>());
        // Claiming it again for the same service is a no-op.
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service, pathPrefix = prefix }, _ct)).StatusCode);

        var listed = (await (await admin.GetAsync($"/api/v1/registry/route-claims?service={service}", _ct)).JsonAsync()).AsArray();
        Assert.Contains(listed, c => c!["pathPrefix"]!.GetValue<string>() == prefix);
        var all = (await (await admin.GetAsync("/api/v1/registry/route-claims", _ct)).JsonAsync()).AsArray();
        Assert.Contains(all, c => c!["service"]!.GetValue<string>() == "fundament" && c["pathPrefix"]!.GetValue<string>() == "/api" && c["source"]!.GetValue<string>() == "reserved");

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/registry/route-claims?pathPrefix={prefix}", _ct)).StatusCode);
        await (await admin.DeleteAsync($"/api/v1/registry/route-claims?pathPrefix={prefix}", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);

        var audit = (await AuditAsync(admin, "registry.route_claim.")).AsObject()["items"]!.AsArray();
        Assert.Contains(audit, e => e!["action"]!.GetValue<string>() == "registry.route_claim.create" && e["target"]!.GetValue<string>() == $"route_claim:{prefix}");
        Assert.Contains(audit, e => e!["action"]!.GetValue<string>() == "registry.route_claim.delete" && e["target"]!.GetValue<string>() == $"route_claim:{prefix}");
    }

    [Fact]
    public async Task OverlappingClaims_Are409_NamingTheHolder()
    {
        using var admin = await factory.AdminAsync();
        string shop = Svc(), rival = Svc(), existing = Svc();
        var prefix = "/" + Svc();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service = shop, pathPrefix = prefix }, _ct)).StatusCode);

        async Task ConflictAsync(string service, string pathPrefix, string holder)
        {
            var response = await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service, pathPrefix }, _ct);
            await response.AssertProblemAsync(HttpStatusCode.Conflict);
            var problem = await response.JsonAsync();
            Assert.Equal(holder, problem["holder"]!.GetValue<string>());
            Assert.Contains($"'{holder}'", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        await ConflictAsync(rival, prefix, shop);                 // the same prefix
        await ConflictAsync(rival, prefix + "/cart", shop);       // inside it
        await ConflictAsync(rival, prefix.ToUpperInvariant(), shop);
        // Fundament's own paths, in any spelling.
        await ConflictAsync(rival, "/api", "fundament");
        await ConflictAsync(rival, "/API/v1/users", "fundament");
        await ConflictAsync(rival, "/.well-known/jwks.json", "fundament");
        await ConflictAsync(rival, "/health", "fundament");
        // The default claim of a service that exists.
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(admin, existing, new { path = $"/{existing}/{{**rest}}" })).StatusCode);
        await ConflictAsync(rival, $"/{existing}/admin", existing);

        await (await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service = rival, pathPrefix = "/" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service = rival, pathPrefix = "/v2/orders" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service = rival, pathPrefix = "/x/{id}" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service = "fundament", pathPrefix = "/" + Svc() }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        var denied = (await AuditAsync(admin, "registry.route_claim.create")).AsObject()["items"]!.AsArray();
        Assert.Contains(denied, e => e!["outcome"]!.GetValue<string>() == "denied");
    }

    [Fact]
    public async Task AService_CannotClaimOrRegisterWithoutRegistryWrite()
    {
        var service = Svc();
        var (client, _) = await factory.ServiceClientAsync(service);
        await (await client.PostAsJsonAsync("/api/v1/registry/route-claims", new { service, pathPrefix = "/" + Svc() }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        // Nor can it register the fundament service, whose routes hold Fundament's own paths.
        await (await RegisterAsync(client, "fundament", new { path = "/api/{**rest}" })).AssertProblemAsync(HttpStatusCode.Forbidden);
        using var admin = await factory.AdminAsync();
        await (await RegisterAsync(admin, "fundament", new { path = "/api/{**rest}" })).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    /// <summary>Every way a service could try to take another's paths or Fundament's own.</summary>
    public static TheoryData<string> Captures() =>
    [
        "/orders/{id}",                    // a more specific template inside another's default claim
        "/orders",
        "/{**rest}",                       // the root catch-all
        "/{service}/items",                // a parameter where the claim must be literal
        "/api/{**rest}",                   // a reserved prefix
        "/oauth2/token",
        "/.well-known/openid-configuration",
        "/ORDERS/{id}",                    // an upper-case variant
        "/Orders/{id}",
        "/billing%2F..%2Forders/{id}",     // an encoded slash and dot-segments
        "/%6Frders/{id}",                  // percent-encoded letters
        "//orders/{id}",                   // a double slash
        "/billing/../orders/{id}",         // dot-segments
        "/v1/orders/{**rest}",             // the gateway's version prefixes
        // Slashes and dot-segments inside a parameter are the parameter's, not path segments.
        "/api/{a=/../../billing/}/{**rest}",
        "/orders/{a=/../../billing/}/{**rest}",
        "/{x=/../billing/}/{**rest}",
        "/oauth2/{a:regex(/../../billing/)}/{**rest}",
        "/orders\\..\\billing/{id}",
    ];

    [Theory]
    [MemberData(nameof(Captures))]
    public async Task Routes_OutsideTheServicesClaims_Are403_NamingTheRouteAndTheClaimItLacks(string path)
    {
        var billing = "billing" + Guid.NewGuid().ToString("N")[..6];
        var (client, _) = await factory.ServiceClientAsync(billing);
        var routePath = path.Replace("billing", billing, StringComparison.Ordinal);
        var response = await RegisterAsync(client, billing, new { path = $"/{billing}/{{**rest}}" }, new { path = routePath });
        await response.AssertProblemAsync(HttpStatusCode.Forbidden);
        var problem = await response.JsonAsync();
        var route = Assert.Single(problem["routes"]!.AsArray())!;
        Assert.Equal(routePath, route["path"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(route["reason"]!.GetValue<string>()));
        Assert.Equal([$"/{billing}"], problem["claims"]!.AsArray().Select(c => c!.GetValue<string>()));
        // Nothing was stored.
        using var admin = await factory.AdminAsync();
        Assert.Empty((await (await admin.GetAsync($"/api/v1/registry/services/{billing}/instances", _ct)).JsonAsync()).AsArray());
    }

    [Fact]
    public async Task AGrantedClaim_LetsTheServiceServeIt_AndRevokingItIsRefusedWhileRoutesNeedIt()
    {
        using var admin = await factory.AdminAsync();
        var service = Svc();
        var extra = "/" + Svc();
        var (client, _) = await factory.ServiceClientAsync(service);
        await (await RegisterAsync(client, service, new { path = $"{extra}/{{**rest}}" })).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service, pathPrefix = extra }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(client, service, new { path = $"{extra}/{{**rest}}" }, new { path = $"/{service}" })).StatusCode);

        var refused = await admin.DeleteAsync($"/api/v1/registry/route-claims?pathPrefix={extra}", _ct);
        await refused.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Contains($"{extra}/{{**rest}}", (await refused.JsonAsync())["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/registry/route-claims?pathPrefix={extra}&force=true", _ct)).StatusCode);
    }

    [Fact]
    public async Task RouteFields_AreValidatedByTheGatewaysParser_AndEveryProblemIsListed()
    {
        using var admin = await factory.AdminAsync();
        var service = Svc();
        var response = await RegisterAsync(admin, service,
            new { path = $"/{service}/a", rateLimit = "no-such-policy", cors = "nor-this", timeout = "forever" },
            new Dictionary<string, object> { ["path"] = $"/{service}/b", ["requestHeaders"] = new Dictionary<string, string> { ["Bad Header"] = "x" }, ["loadBalancing"] = "random", ["retries"] = 9 },
            new Dictionary<string, object> { ["path"] = $"/{service}/c", ["forwardAuthorization"] = "sometimes", ["rateLimt"] = "typo" });
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        var errors = (await response.JsonAsync())["errors"]!.AsObject();
        Assert.Contains("no-such-policy", errors["routes[0].rateLimit"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("nor-this", errors["routes[0].cors"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotNull(errors["routes[0].timeout"]);
        Assert.NotNull(errors["routes[1].requestHeaders"]);
        Assert.NotNull(errors["routes[1].loadBalancing"]);
        Assert.NotNull(errors["routes[1].retries"]);
        Assert.NotNull(errors["routes[2].forwardAuthorization"]);
        Assert.NotNull(errors["routes[2].rateLimt"]);
        Assert.Empty((await (await admin.GetAsync($"/api/v1/registry/services/{service}/instances", _ct)).JsonAsync()).AsArray());
    }

    [Theory]
    [InlineData("/{0}/{{id:nosuch}}")]
    [InlineData("/{0}/{{id:regex(^(a+)+$)}}")]
    [InlineData("/{0}/{{id=default}}")]
    [InlineData("/{0}/{{id:length(x)}}")]
    [InlineData("/{0}/{{*rest}}/x")]
    public async Task TemplatesTheGatewayCouldNotServeSafely_Are400(string template)
    {
        using var admin = await factory.AdminAsync();
        var service = Svc();
        var response = await RegisterAsync(admin, service, new { path = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, service) });
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.NotNull((await response.JsonAsync())["errors"]!["routes[0].path"]);
        var fine = await RegisterAsync(admin, service, new { path = $"/{service}/{{id:int}}/{{code:length(3)}}" }, new { path = $"/{service}/files/{{name}}.{{ext}}" });
        Assert.Equal(HttpStatusCode.Created, fine.StatusCode);
    }

    [Fact]
    public async Task NodeInstanceIds_AreReservedForFundamentsOwnNodes()
    {
        var service = Svc();
        var (client, _) = await factory.ServiceClientAsync(service);
        var response = await client.PostAsJsonAsync("/api/v1/registry/instances", new { service, instanceId = "fundament-10.0.0.5-5080", address = "127.0.0.1", port = 9400 }, _ct);
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.NotNull((await response.JsonAsync())["errors"]!["instanceId"]);
    }

    [Fact]
    public async Task Passthrough_NeedsAnOperatorsGrant()
    {
        var service = Svc();
        var (client, _) = await factory.ServiceClientAsync(service);
        var response = await RegisterAsync(client, service, new { path = $"/{service}/{{**rest}}", forwardAuthorization = "passthrough" });
        await response.AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Equal("registry.passthrough", (await response.JsonAsync())["missingPermission"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(client, service, new { path = $"/{service}/{{**rest}}", forwardAuthorization = "none" })).StatusCode);
    }

    [Fact]
    public async Task Passthrough_IsAnExplicitOptIn_ThatIsAudited()
    {
        using var admin = await factory.AdminAsync();
        var service = Svc();
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(admin, service, new { path = $"/{service}/{{**rest}}", forwardAuthorization = "passthrough" })).StatusCode);
        var entries = (await AuditAsync(admin, "registry.route_passthrough")).AsObject()["items"]!.AsArray();
        Assert.Contains(entries, e => e!["details"]!["service"]!.GetValue<string>() == service);
    }
}

public sealed class SqliteRouteClaimsTests(SqliteFundamentFactory factory) : RouteClaimsTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresRouteClaimsTests : RouteClaimsTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresRouteClaimsTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
