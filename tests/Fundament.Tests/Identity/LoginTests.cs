using System.Net;
using System.Net.Http.Json;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Identity;

public abstract class LoginTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task Login_WithCorrectPassword_ReturnsBearerPair()
    {
        var (_, username) = await factory.CreateUserAsync();
        var tokens = await factory.LoginAsync(username, Api.UserPassword);

        Assert.Equal("Bearer", tokens["token_type"]!.GetValue<string>());
        Assert.Equal(900, tokens["expires_in"]!.GetValue<int>());
        Assert.Equal(3, tokens["access_token"]!.GetValue<string>().Split('.').Length);
        Assert.True(tokens["refresh_token"]!.GetValue<string>().Length >= 40);
    }

    [Fact]
    public async Task Login_UsernameIsCaseInsensitive()
    {
        var (_, username) = await factory.CreateUserAsync();
        var tokens = await factory.LoginAsync(username.ToUpperInvariant(), Api.UserPassword);
        Assert.NotNull(tokens["access_token"]);
    }

    [Fact]
    public async Task Login_WrongPasswordAndUnknownUser_AnswerAlike()
    {
        var (_, username) = await factory.CreateUserAsync();
        using var client = factory.CreateClient();

        var wrong = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password = "not-the-password-123" }, _ct);
        var unknown = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = Api.UniqueName("ghost"), password = "not-the-password-123" }, _ct);

        await wrong.AssertProblemAsync(HttpStatusCode.Unauthorized);
        await unknown.AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Equal((await wrong.JsonAsync())["detail"]!.ToString(), (await unknown.JsonAsync())["detail"]!.ToString());
    }

    [Fact]
    public async Task Login_AfterFiveFailures_LocksEvenTheCorrectPassword_WithGrowingBackoff()
    {
        var (_, username) = await factory.CreateUserAsync();
        using var client = factory.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            var failed = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password = $"wrong-password-{i}-xyz" }, _ct);
            Assert.Equal(HttpStatusCode.Unauthorized, failed.StatusCode);
        }

        var locked = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password = Api.UserPassword }, _ct);
        await locked.AssertProblemAsync(HttpStatusCode.TooManyRequests);
        var firstWait = int.Parse(locked.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(firstWait, 1, 60);

        factory.Time.Advance(TimeSpan.FromSeconds(firstWait + 1));
        for (var i = 0; i < 5; i++)
        {
            await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password = $"wrong-again-{i}-xyz" }, _ct);
        }
        var lockedAgain = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password = Api.UserPassword }, _ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, lockedAgain.StatusCode);
        var secondWait = int.Parse(lockedAgain.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(secondWait > firstWait, $"second lockout {secondWait}s should exceed the first {firstWait}s");

        factory.Time.Advance(TimeSpan.FromSeconds(secondWait + 1));
        var tokens = await factory.LoginAsync(username, Api.UserPassword);
        Assert.NotNull(tokens["access_token"]);
    }

    [Fact]
    public async Task Login_UnknownUsername_LocksTheSameWay_SoNamesCannotBeProbed()
    {
        using var client = factory.CreateClient();
        var ghost = Api.UniqueName("ghost");
        HttpResponseMessage? last = null;
        for (var i = 0; i < 6; i++)
        {
            last = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = ghost, password = $"wrong-password-{i}-xyz" }, _ct);
        }
        Assert.Equal(HttpStatusCode.TooManyRequests, last!.StatusCode);
    }

    [Fact]
    public async Task Login_DisabledUser_IsRefused()
    {
        var (id, username) = await factory.CreateUserAsync();
        using var admin = await factory.AdminAsync();
        (await admin.PostAsync($"/api/v1/users/{id}/disable", null, _ct)).EnsureSuccessStatusCode();

        using var client = factory.CreateClient();
        var response = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password = Api.UserPassword }, _ct);
        await response.AssertProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Login_MissingFields_Is400WithFieldErrors()
    {
        using var client = factory.CreateClient();
        var response = await client.PostAsJsonAsync("/api/v1/auth/login", new { username = "" }, _ct);
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        var errors = (await response.JsonAsync())["errors"]!;
        Assert.NotNull(errors["username"]);
        Assert.NotNull(errors["password"]);
    }
}

public sealed class SqliteLoginTests(SqliteFundamentFactory factory) : LoginTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresLoginTests : LoginTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresLoginTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
