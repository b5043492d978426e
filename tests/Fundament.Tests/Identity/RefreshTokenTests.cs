using System.Net;
using System.Net.Http.Json;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Identity;

public abstract class RefreshTokenTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private async Task<HttpResponseMessage> RefreshAsync(string token)
    {
        using var client = factory.CreateClient();
        return await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = token }, _ct);
    }

    [Fact]
    public async Task Refresh_RotatesThePair()
    {
        var (_, username) = await factory.CreateUserAsync();
        var first = await factory.LoginAsync(username, Api.UserPassword);

        var response = await RefreshAsync(first["refresh_token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var second = await response.JsonAsync();

        Assert.NotEqual(first["refresh_token"]!.GetValue<string>(), second["refresh_token"]!.GetValue<string>());
        using var client = factory.Bearer(second["access_token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me", _ct)).StatusCode);
    }

    [Fact]
    public async Task Refresh_ReusingARotatedToken_RevokesThatFamilyOnly()
    {
        var (_, username) = await factory.CreateUserAsync();
        var phone = await factory.LoginAsync(username, Api.UserPassword);
        var laptop = await factory.LoginAsync(username, Api.UserPassword);

        var stolen = phone["refresh_token"]!.GetValue<string>();
        var rotated = await (await RefreshAsync(stolen)).JsonAsync();

        // The attacker replays the old token: refused, and the family it belongs to ends.
        await (await RefreshAsync(stolen)).AssertProblemAsync(HttpStatusCode.Unauthorized);
        // So the legitimate holder's newer token of that family is dead too...
        await (await RefreshAsync(rotated["refresh_token"]!.GetValue<string>())).AssertProblemAsync(HttpStatusCode.Unauthorized);
        // ...and its access token stops working,
        using (var phoneClient = factory.Bearer(rotated["access_token"]!.GetValue<string>()))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await phoneClient.GetAsync("/api/v1/me", _ct)).StatusCode);
        }
        // while the user's other session lives on.
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync(laptop["refresh_token"]!.GetValue<string>())).StatusCode);

        using var admin = await factory.AdminAsync();
        var audit = await (await admin.GetAsync("/api/v1/audit?action=auth.refresh_token_reuse", _ct)).JsonAsync();
        Assert.NotEmpty(audit["items"]!.AsArray());
    }

    [Fact]
    public async Task Logout_RevokesTheFamily()
    {
        var (_, username) = await factory.CreateUserAsync();
        var tokens = await factory.LoginAsync(username, Api.UserPassword);
        var refresh = tokens["refresh_token"]!.GetValue<string>();

        using var client = factory.CreateClient();
        Assert.Equal(HttpStatusCode.NoContent, (await client.PostAsJsonAsync("/api/v1/auth/logout", new { refresh_token = refresh }, _ct)).StatusCode);

        await (await RefreshAsync(refresh)).AssertProblemAsync(HttpStatusCode.Unauthorized);
        using var bearer = factory.Bearer(tokens["access_token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Unauthorized, (await bearer.GetAsync("/api/v1/me", _ct)).StatusCode);
    }

    [Fact]
    public async Task Refresh_AfterItsLifetime_IsRefused()
    {
        var (_, username) = await factory.CreateUserAsync();
        var tokens = await factory.LoginAsync(username, Api.UserPassword);
        factory.Time.Advance(TimeSpan.FromDays(15));
        await (await RefreshAsync(tokens["refresh_token"]!.GetValue<string>())).AssertProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Sessions_AreListedAndCanBeEndedOneByOne()
    {
        var (_, username) = await factory.CreateUserAsync();
        var first = await factory.LoginAsync(username, Api.UserPassword);
        var second = await factory.LoginAsync(username, Api.UserPassword);
        using var client = factory.Bearer(second["access_token"]!.GetValue<string>());

        var sessions = (await (await client.GetAsync("/api/v1/me/sessions", _ct)).JsonAsync()).AsArray();
        Assert.Equal(2, sessions.Count);
        var other = sessions.Single(s => !s!["current"]!.GetValue<bool>())!["id"]!.GetValue<string>();

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/me/sessions/{other}", _ct)).StatusCode);
        await (await RefreshAsync(first["refresh_token"]!.GetValue<string>())).AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.OK, (await RefreshAsync(second["refresh_token"]!.GetValue<string>())).StatusCode);
        await (await client.DeleteAsync($"/api/v1/me/sessions/{Guid.NewGuid()}", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }
}

public sealed class SqliteRefreshTokenTests(SqliteFundamentFactory factory) : RefreshTokenTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresRefreshTokenTests : RefreshTokenTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresRefreshTokenTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
