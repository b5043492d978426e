using System.Net.Http.Json;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Hosting;

/// <summary>
/// The log canary that checks every server log line of the run (see <see cref="LogCanary"/>)
/// recognises what it is there to catch, and is really attached.
/// </summary>
public sealed class LogCanaryTests(SqliteFundamentFactory factory) : IClassFixture<SqliteFundamentFactory>
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLW9mLWVub3VnaC1sZW5ndGg accepted")]
    [InlineData("created fk_abcd1234_Zm9vYmFyYmF6cXV4cXV1eA for user")]
    [InlineData("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw rotated")]
    [InlineData("POST https://hooks.slack.com/services/T0123456/B0123456/abcdefghijkl")]
    [InlineData("Authorization: Bearer 8f3kQz0rT5mW2xYb7nLp4vHc")]
    [InlineData("Authorization: Basic Y2xpZW50OnMzY3JldC1wYXNzd29yZA==")]
    [InlineData("header ApiKey fk_0000000000000000000000")]
    public void CredentialShapes_AreCaught(string line) => Assert.NotNull(LogCanary.Inspect(line));

    [Theory]
    [InlineData("Bearer was not authenticated. Failure message: IDX10503")]
    [InlineData("Request finished HTTP/1.1 GET http://localhost/api/v1/users - 200")]
    [InlineData("Slack channel ops delivered to https://hooks.slack.com")]
    [InlineData("AuthenticationScheme=Bearer FailureMessage=IDX10214: Audience validation failed")]
    public void OrdinaryLines_Pass(string line) => Assert.Null(LogCanary.Inspect(line));

    [Fact]
    public void RegisteredSecrets_AreCaughtAnywhereInALine()
    {
        var secret = "s3cr3t-" + Guid.NewGuid().ToString("N");
        Assert.Null(LogCanary.Inspect($"value was {secret}"));
        LogCanary.Register(secret);
        Assert.NotNull(LogCanary.Inspect($"value was {secret}."));
        Assert.NotNull(LogCanary.Inspect($"password={secret}&user=x"));
        Assert.Null(LogCanary.Inspect($"value was {secret[..^1]}"));
    }

    [Fact]
    public async Task EveryServerLogLine_IsInspected_AndSecretsCrossingTheApiAreLearnt()
    {
        var before = LogCanary.LinesInspected;
        using var admin = await factory.AdminAsync();
        Assert.True(LogCanary.LinesInspected > before, "the canary saw no log line of a login");
        // A password only this request carried is now known to the canary as a secret.
        var password = "Canary-" + Guid.NewGuid().ToString("N");
        var created = await admin.PostAsJsonAsync("/api/v1/users", new { username = "canary-" + Guid.NewGuid().ToString("N")[..8], password, roles = new[] { "user" } }, _ct);
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        Assert.NotNull(LogCanary.Inspect("logged " + password));
    }
}
