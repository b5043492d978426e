using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Identity;
using Fundament.Identity.Bootstrap;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Identity;

/// <summary>
/// <c>fundament admin recover</c>: the way back in when no administrator can log in. Here through
/// the service the command runs; <see cref="Hosting.ServerProcessTests"/> runs the real command.
/// </summary>
public sealed class AdminRecoveryTests(SqliteFundamentFactory factory) : IClassFixture<SqliteFundamentFactory>
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private async Task<HttpStatusCode> LoginStatusAsync(string username, string password)
    {
        using var client = factory.CreateClient();
        return (await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password }, _ct)).StatusCode;
    }

    [Fact]
    public async Task A_disabled_locked_out_demoted_admin_gets_back_in_and_its_old_sessions_end()
    {
        var (id, username) = await factory.CreateUserAsync(["admin"]);
        var old = await factory.LoginAsync(username, Api.UserPassword);
        // With a second factor (whose device is lost, say): recovery removes it too, or recovery would not get anyone in.
        using (var self = factory.Bearer(old["access_token"]!.GetValue<string>()))
        {
            var secret = (await (await self.PostAsync("/api/v1/me/mfa/totp", null, _ct)).JsonAsync())["secret"]!.GetValue<string>();
            var code = new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(secret)).ComputeTotp(factory.Time.GetUtcNow().UtcDateTime);
            (await self.PostAsJsonAsync("/api/v1/me/mfa/totp/confirm", new { code }, _ct)).EnsureSuccessStatusCode();
        }

        // Locked out by failed logins, then disabled and demoted by another admin.
        for (var i = 0; i < 5; i++)
        {
            await LoginStatusAsync(username, "Wrong-Password-123456");
        }
        Assert.NotEqual(HttpStatusCode.OK, await LoginStatusAsync(username, Api.UserPassword));
        using (var admin = await factory.AdminAsync())
        {
            (await admin.PatchAsJsonAsync($"/api/v1/users/{id}", new { disabled = true, roles = new[] { "user" } }, _ct)).EnsureSuccessStatusCode();
        }

        var result = await factory.Services.GetRequiredService<AdminRecovery>().RecoverAsync(username, null, _ct);
        Assert.False(result.Created);
        Assert.True(result.Generated);
        Assert.Equal(24, result.Password.Length);

        var tokens = await factory.LoginAsync(username, result.Password);
        using var recovered = factory.Bearer(tokens["access_token"]!.GetValue<string>());
        var me = await recovered.GetFromJsonAsync<JsonNode>("/api/v1/me", _ct);
        Assert.Contains("admin", me!["roles"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.OK, (await recovered.GetAsync("/api/v1/users", _ct)).StatusCode);
        // The session from before the recovery is over: whoever held it is out.
        using var anonymous = factory.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = old["refresh_token"]!.GetValue<string>() }, _ct)).StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, await LoginStatusAsync(username, Api.UserPassword));

        var audit = await recovered.GetFromJsonAsync<JsonNode>($"/api/v1/audit?target=user:{id}", _ct);
        Assert.Contains(audit!["items"]!.AsArray(), e => e!["action"]!.GetValue<string>() == "user.recover" && e["actor"]!.GetValue<string>() == "cli:admin-recover");
    }

    [Fact]
    public async Task A_missing_admin_is_created_and_a_given_password_must_pass_the_policy()
    {
        var recovery = factory.Services.GetRequiredService<AdminRecovery>();
        var username = Api.UniqueName("rescue");
        await Assert.ThrowsAsync<RecoveryRefusedException>(() => recovery.RecoverAsync(username, "short", _ct));
        Assert.Equal(HttpStatusCode.Unauthorized, await LoginStatusAsync(username, "short"));

        var result = await recovery.RecoverAsync(username, "A-Chosen-Long-Password-42", _ct);
        Assert.True(result.Created);
        Assert.False(result.Generated);
        var tokens = await factory.LoginAsync(username, "A-Chosen-Long-Password-42");
        using var rescued = factory.Bearer(tokens["access_token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await rescued.GetAsync("/api/v1/roles", _ct)).StatusCode);
    }
}
