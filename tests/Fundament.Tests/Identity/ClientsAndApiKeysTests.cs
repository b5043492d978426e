using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Identity;

public abstract class ClientsAndApiKeysTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private async Task<JsonNode> CreateClientAsync(params string[] roles)
    {
        using var admin = await factory.AdminAsync();
        var response = await admin.PostAsJsonAsync("/api/v1/clients", new { name = Api.UniqueName("svc"), roles }, _ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await response.JsonAsync();
    }

    private Task<HttpResponseMessage> TokenAsync(Dictionary<string, string> form, AuthenticationHeaderValue? authorization = null)
    {
        var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = authorization;
        return client.PostAsync("/oauth2/token", new FormUrlEncodedContent(form), _ct);
    }

    [Fact]
    public async Task ClientCredentials_WithFormOrBasic_IssueATokenForTheClient()
    {
        var created = await CreateClientAsync("guest");
        var id = created["client_id"]!.GetValue<string>();
        var secret = created["client_secret"]!.GetValue<string>();

        var viaForm = await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = secret });
        Assert.Equal(HttpStatusCode.OK, viaForm.StatusCode);
        Assert.Equal("no-store", viaForm.Headers.CacheControl!.ToString());
        var body = await viaForm.JsonAsync();
        Assert.Equal("Bearer", body["token_type"]!.GetValue<string>());
        Assert.Null(body["refresh_token"]);

        var basic = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{id}:{secret}")));
        var viaBasic = await TokenAsync(new() { ["grant_type"] = "client_credentials" }, basic);
        Assert.Equal(HttpStatusCode.OK, viaBasic.StatusCode);

        using var service = factory.Bearer((await viaBasic.JsonAsync())["access_token"]!.GetValue<string>());
        var me = await (await service.GetAsync("/api/v1/me", _ct)).JsonAsync();
        Assert.Equal("client", me["type"]!.GetValue<string>());
        Assert.Equal(id, me["id"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Forbidden, (await service.GetAsync("/api/v1/users", _ct)).StatusCode);
    }

    [Fact]
    public async Task ClientCredentials_Errors_FollowRfc6749InsideProblemDetails()
    {
        var created = await CreateClientAsync();
        var id = created["client_id"]!.GetValue<string>();

        var wrongSecret = await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = "wrong" });
        await wrongSecret.AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Equal("invalid_client", (await wrongSecret.JsonAsync())["error"]!.GetValue<string>());

        var badGrant = await TokenAsync(new() { ["grant_type"] = "password", ["username"] = "admin", ["password"] = "x" });
        await badGrant.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal("unsupported_grant_type", (await badGrant.JsonAsync())["error"]!.GetValue<string>());

        using var json = factory.CreateClient();
        var notForm = await json.PostAsJsonAsync("/oauth2/token", new { grant_type = "client_credentials" }, _ct);
        await notForm.AssertProblemAsync(HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task RotatedOrDisabledClient_LosesAccess()
    {
        var created = await CreateClientAsync();
        var id = created["client_id"]!.GetValue<string>();
        var secret = created["client_secret"]!.GetValue<string>();
        var token = (await (await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = secret })).JsonAsync())["access_token"]!.GetValue<string>();
        using var admin = await factory.AdminAsync();

        var rotated = await (await admin.PostAsync($"/api/v1/clients/{id}/rotate-secret", null, _ct)).JsonAsync();
        var newSecret = rotated["client_secret"]!.GetValue<string>();
        Assert.NotEqual(secret, newSecret);
        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = secret })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = newSecret })).StatusCode);

        (await admin.PatchAsJsonAsync($"/api/v1/clients/{id}", new { disabled = true }, _ct)).EnsureSuccessStatusCode();
        using var service = factory.Bearer(token);
        Assert.Equal(HttpStatusCode.Unauthorized, (await service.GetAsync("/api/v1/me", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = newSecret })).StatusCode);
    }

    [Fact]
    public async Task ApiKey_WorksScopedAndRevocable()
    {
        using var admin = await factory.AdminAsync();
        var full = await (await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "ci" }, _ct)).JsonAsync();
        var key = full["key"]!.GetValue<string>();
        Assert.StartsWith("fk_", key);

        using (var withKey = factory.WithApiKey(key))
        {
            Assert.Equal(HttpStatusCode.OK, (await withKey.GetAsync("/api/v1/users", _ct)).StatusCode);
            var me = await (await withKey.GetAsync("/api/v1/me", _ct)).JsonAsync();
            Assert.Equal("apikey", me["authMethod"]!.GetValue<string>());
        }

        // A key scoped down to 'guest' cannot manage users, nor mint itself a stronger key.
        var scoped = (await (await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "read-only", roles = new[] { "guest" } }, _ct)).JsonAsync());
        using (var withScoped = factory.WithApiKey(scoped["key"]!.GetValue<string>()))
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await withScoped.GetAsync("/api/v1/users", _ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await withScoped.PostAsJsonAsync("/api/v1/api-keys", new { name = "escalate", roles = new[] { "admin" } }, _ct)).StatusCode);
        }
        var userKey = await factory.UserClientAsync("user");
        var escalate = await userKey.Client.PostAsJsonAsync("/api/v1/api-keys", new { name = "escalate", roles = new[] { "admin" } }, _ct);
        await escalate.AssertProblemAsync(HttpStatusCode.Forbidden);

        var list = (await (await admin.GetAsync("/api/v1/api-keys", _ct)).JsonAsync()).AsArray();
        Assert.All(list, k => Assert.Null(k!["key"]));
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/api-keys/{full["id"]!.GetValue<string>()}", _ct)).StatusCode);
        using var revoked = factory.WithApiKey(key);
        await (await revoked.GetAsync("/api/v1/me", _ct)).AssertProblemAsync(HttpStatusCode.Unauthorized);
        using var garbage = factory.WithApiKey("fk_nothing_here");
        await (await garbage.GetAsync("/api/v1/me", _ct)).AssertProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task ApiKey_Expires()
    {
        using var admin = await factory.AdminAsync();
        var created = await (await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "short", expiresAt = factory.Time.GetUtcNow().AddHours(1) }, _ct)).JsonAsync();
        using var withKey = factory.WithApiKey(created["key"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await withKey.GetAsync("/api/v1/me", _ct)).StatusCode);
        factory.Time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(HttpStatusCode.Unauthorized, (await withKey.GetAsync("/api/v1/me", _ct)).StatusCode);
    }

    [Fact]
    public async Task PasswordReset_SendsASingleUseExpiringToken_WithoutRevealingAccounts()
    {
        var (_, username) = await factory.CreateUserAsync(email: $"{Guid.NewGuid():N}@example.com");
        var session = await factory.LoginAsync(username, Api.UserPassword);
        using var anonymous = factory.CreateClient();
        var before = factory.Notifications.Sent.Count;

        Assert.Equal(HttpStatusCode.Accepted, (await anonymous.PostAsJsonAsync("/api/v1/auth/password-reset", new { username = Api.UniqueName("ghost") }, _ct)).StatusCode);
        Assert.Equal(before, factory.Notifications.Sent.Count);
        Assert.Equal(HttpStatusCode.Accepted, (await anonymous.PostAsJsonAsync("/api/v1/auth/password-reset", new { username }, _ct)).StatusCode);
        var message = factory.Notifications.Sent.Last();
        var token = System.Text.RegularExpressions.Regex.Match(message.Body, "\"token\":\"([^\"]+)\"").Groups[1].Value;
        Assert.NotEmpty(token);

        var weak = await anonymous.PostAsJsonAsync("/api/v1/auth/password-reset/confirm", new { token, newPassword = "short" }, _ct);
        await weak.AssertProblemAsync(HttpStatusCode.BadRequest);
        var confirm = await anonymous.PostAsJsonAsync("/api/v1/auth/password-reset/confirm", new { token, newPassword = "Brand-New-Password-55" }, _ct);
        Assert.Equal(HttpStatusCode.NoContent, confirm.StatusCode);
        var reuse = await anonymous.PostAsJsonAsync("/api/v1/auth/password-reset/confirm", new { token, newPassword = "Other-New-Password-66" }, _ct);
        await reuse.AssertProblemAsync(HttpStatusCode.BadRequest);

        await factory.LoginAsync(username, "Brand-New-Password-55");
        var oldRefresh = await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = session["refresh_token"]!.GetValue<string>() }, _ct);
        await oldRefresh.AssertProblemAsync(HttpStatusCode.Unauthorized);

        factory.Time.Advance(TimeSpan.FromMinutes(2));
        await anonymous.PostAsJsonAsync("/api/v1/auth/password-reset", new { username }, _ct);
        var late = System.Text.RegularExpressions.Regex.Match(factory.Notifications.Sent.Last().Body, "\"token\":\"([^\"]+)\"").Groups[1].Value;
        factory.Time.Advance(TimeSpan.FromMinutes(31));
        await (await anonymous.PostAsJsonAsync("/api/v1/auth/password-reset/confirm", new { token = late, newPassword = "Too-Late-Password-77" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
    }
}

public sealed class SqliteClientsAndApiKeysTests(SqliteFundamentFactory factory) : ClientsAndApiKeysTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresClientsAndApiKeysTests : ClientsAndApiKeysTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresClientsAndApiKeysTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
