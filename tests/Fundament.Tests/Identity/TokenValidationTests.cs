using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;
using Jose;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Fundament.Tests.Identity;

/// <summary>
/// Tokens verify with standard libraries through discovery and the JWKS; forged tokens are
/// refused by every protected endpoint.
/// </summary>
public sealed class TokenValidationTests(SqliteFundamentFactory factory) : IClassFixture<SqliteFundamentFactory>
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private async Task<OpenIdConnectConfiguration> DiscoverAsync()
    {
        using var http = factory.CreateClient();
        var manager = new ConfigurationManager<OpenIdConnectConfiguration>(
            FundamentFactory.Issuer + "/.well-known/openid-configuration",
            new OpenIdConnectConfigurationRetriever(),
            new HttpDocumentRetriever(http) { RequireHttps = false });
        return await manager.GetConfigurationAsync(_ct);
    }

    private TokenValidationParameters Parameters(OpenIdConnectConfiguration configuration) => new()
    {
        ValidIssuer = configuration.Issuer,
        ValidAudience = "fundament",
        IssuerSigningKeys = configuration.SigningKeys,
        // The library's own clock: our fake clock sits at a fixed date, so validate lifetime against it.
        LifetimeValidator = (nbf, exp, _, _) => exp > factory.Time.GetUtcNow().UtcDateTime,
    };

    [Fact]
    public async Task LoginToken_VerifiesThroughDiscoveryAndJwks_WithMicrosoftIdentityModel()
    {
        var tokens = await factory.LoginAsync("admin", FundamentFactory.AdminPassword);
        var configuration = await DiscoverAsync();
        Assert.Equal(FundamentFactory.Issuer, configuration.Issuer);
        Assert.NotEmpty(configuration.SigningKeys);

        var result = await new JsonWebTokenHandler().ValidateTokenAsync(tokens["access_token"]!.GetValue<string>(), Parameters(configuration));

        Assert.True(result.IsValid, result.Exception?.Message);
        var jwt = (JsonWebToken)result.SecurityToken;
        Assert.Equal("ES256", jwt.Alg);
        Assert.Equal("at+jwt", jwt.Typ);
        foreach (var claim in new[] { "iss", "aud", "sub", "jti", "exp", "iat", "client_id" })
        {
            Assert.True(jwt.TryGetClaim(claim, out _), $"claim {claim} missing");
        }
        Assert.Contains(jwt.Claims, c => c.Type == "roles" && c.Value == "admin");
    }

    [Fact]
    public async Task ClientCredentialsToken_VerifiesWithJoseJwt_UsingTheJwk()
    {
        using var admin = await factory.AdminAsync();
        var created = await (await admin.PostAsJsonAsync("/api/v1/clients", new { name = Api.UniqueName("svc") }, _ct)).JsonAsync();
        using var client = factory.CreateClient();
        var response = await client.PostAsync("/oauth2/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = created["client_id"]!.GetValue<string>(),
            ["client_secret"] = created["client_secret"]!.GetValue<string>(),
        }), _ct);
        var token = (await response.JsonAsync())["access_token"]!.GetValue<string>();

        var jwks = await (await client.GetAsync((await DiscoverAsync()).JwksUri, _ct)).JsonAsync();
        var kid = Jose.JWT.Headers(token)["kid"].ToString();
        var jwk = jwks["keys"]!.AsArray().Single(k => k!["kid"]!.GetValue<string>() == kid)!;
        var key = new Jwk(crv: jwk["crv"]!.GetValue<string>(), x: jwk["x"]!.GetValue<string>(), y: jwk["y"]!.GetValue<string>(), d: null);

        var payload = JsonNode.Parse(Jose.JWT.Decode(token, key, JwsAlgorithm.ES256))!;
        Assert.Equal(created["client_id"]!.GetValue<string>(), payload["sub"]!.GetValue<string>());
        Assert.Equal(created["client_id"]!.GetValue<string>(), payload["client_id"]!.GetValue<string>());
        Assert.Equal(FundamentFactory.Issuer, payload["iss"]!.GetValue<string>());
    }

    public static TheoryData<string> Forgeries() => TokenForgery.Kinds();

    [Theory]
    [MemberData(nameof(Forgeries))]
    public async Task ForgedToken_IsRefusedByEveryProtectedEndpoint(string forgery)
    {
        var tokens = await factory.LoginAsync("admin", FundamentFactory.AdminPassword);
        var genuine = tokens["access_token"]!.GetValue<string>();
        var forged = await ForgeAsync(forgery, genuine);

        foreach (var (method, path) in ProtectedEndpoints())
        {
            using var client = factory.Bearer(forged);
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method is "POST" or "PUT" or "PATCH")
            {
                request.Content = JsonContent.Create(new { });
            }
            var response = await client.SendAsync(request, _ct);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{forgery}: {method} {path} answered {(int)response.StatusCode}");
        }
        if (forgery == "expired")
        {
            return;
        }
        // The genuine token still works, so the refusals above are about the forgery.
        using var ok = factory.Bearer(genuine);
        Assert.Equal(HttpStatusCode.OK, (await ok.GetAsync("/api/v1/users", _ct)).StatusCode);
    }

    private async Task<string> ForgeAsync(string forgery, string genuine)
    {
        using var client = factory.CreateClient();
        return await TokenForgery.ForgeAsync(factory, client, forgery, genuine, _ct);
    }

    /// <summary>Every endpoint that requires a caller, with its route parameters filled in.</summary>
    private IEnumerable<(string Method, string Path)> ProtectedEndpoints() =>
        EndpointCatalog.All(factory).Where(e => e.Protected).Select(e => (e.Method, EndpointCatalog.Fill(e.Template, "some-id")));

    [Fact]
    public async Task ProtectedEndpoints_AreDiscovered()
    {
        var endpoints = ProtectedEndpoints().ToList();
        Assert.Contains(("POST", "/api/v1/users"), endpoints);
        Assert.Contains(("GET", "/api/v1/audit"), endpoints);
        Assert.True(endpoints.Count > 25, $"only {endpoints.Count} protected endpoints found");
        await Task.CompletedTask;
    }

    [Fact]
    public async Task AToken_AlreadyAcceptedOnce_StillExpiresOnTime()
    {
        var token = (await factory.LoginAsync("admin", FundamentFactory.AdminPassword))["access_token"]!.GetValue<string>();
        using var client = factory.Bearer(token);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me", _ct)).StatusCode);
        // Validated once, then answered from the cache of validated tokens until the token's expiry.
        var validated = factory.Services.GetRequiredService<Fundament.Identity.Authentication.ValidatedTokens>();
        Assert.NotNull(validated.Find(token, factory.Time.GetUtcNow(), _ => true));
        Assert.Null(validated.Find(token, factory.Time.GetUtcNow(), _ => false)); // a retired key ends it at once
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me", _ct)).StatusCode); // validated again in full
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me", _ct)).StatusCode);
        // Past expiry plus the configured 30 s clock skew.
        factory.Time.Advance(TimeSpan.FromMinutes(15) + TimeSpan.FromSeconds(31));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/me", _ct)).StatusCode);
    }

    [Fact]
    public async Task Jwks_PublishesOnlyPublicParts()
    {
        var jwks = JsonDocument.Parse(await factory.CreateClient().GetStringAsync("/.well-known/jwks.json", _ct));
        foreach (var key in jwks.RootElement.GetProperty("keys").EnumerateArray())
        {
            Assert.False(key.TryGetProperty("d", out _), "private key material in the JWKS");
            Assert.Equal("sig", key.GetProperty("use").GetString());
        }
    }
}
