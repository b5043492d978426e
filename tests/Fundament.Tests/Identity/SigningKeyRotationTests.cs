using System.Net;
using System.Text.Json.Nodes;
using Fundament.Identity.Tokens;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Fundament.Tests.Identity;

public sealed class SigningKeyRotationTests(SqliteFundamentFactory factory) : IClassFixture<SqliteFundamentFactory>
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private async Task<List<string>> JwksKidsAsync()
    {
        using var client = factory.CreateClient();
        var jwks = JsonNode.Parse(await client.GetStringAsync("/.well-known/jwks.json", _ct))!;
        return jwks["keys"]!.AsArray().Select(k => k!["kid"]!.GetValue<string>()).ToList();
    }

    private async Task<string> TokenAsync() => (await factory.LoginAsync("admin", FundamentFactory.AdminPassword))["access_token"]!.GetValue<string>();

    private static string KidOf(string token) => new JsonWebToken(token).Kid;

    [Fact]
    public async Task Rotation_PrepublishesTheNextKey_AndRetiresTheOldOneAfterItsLastToken()
    {
        var keys = factory.Services.GetRequiredService<SigningKeyStore>();
        var first = KidOf(await TokenAsync());
        Assert.Equal([first], await JwksKidsAsync());

        // Just before the first key's term ends: the successor is published but does not sign yet.
        factory.Time.Advance(TimeSpan.FromDays(30) - TimeSpan.FromMinutes(1));
        await keys.RotateIfDueAsync(_ct);
        var published = await JwksKidsAsync();
        Assert.Equal(2, published.Count);
        var lastOfOld = await TokenAsync();
        Assert.Equal(first, KidOf(lastOfOld));

        // After the switch new tokens use the new key, and the old key's last token still works.
        factory.Time.Advance(TimeSpan.FromMinutes(2));
        await keys.RotateIfDueAsync(_ct);
        var fresh = await TokenAsync();
        var second = KidOf(fresh);
        Assert.NotEqual(first, second);
        Assert.Contains(second, published);
        using (var old = factory.Bearer(lastOfOld))
        {
            Assert.Equal(HttpStatusCode.OK, (await old.GetAsync("/api/v1/me", _ct)).StatusCode);
        }

        // Once every token the old key signed has expired, it leaves the JWKS.
        factory.Time.Advance(TimeSpan.FromMinutes(16));
        await keys.RotateIfDueAsync(_ct);
        Assert.Equal([second], await JwksKidsAsync());
        using var current = factory.Bearer(await TokenAsync());
        Assert.Equal(HttpStatusCode.OK, (await current.GetAsync("/api/v1/me", _ct)).StatusCode);
    }
}
