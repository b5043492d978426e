using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Dapper;
using Fundament.Core.Storage;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using OtpNet;

namespace Fundament.Tests.Identity;

/// <summary>
/// Second factors through the API: TOTP enrolment and the two-step login, replay, recovery codes,
/// a role that requires a factor, an administrator's reset within their reach, and the limits on a
/// login challenge. The clock is the factory's fake one, so codes are computed for its time.
/// </summary>
public abstract class MfaTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private string Code(string secret, TimeSpan? offset = null) =>
        new Totp(Base32Encoding.ToBytes(secret)).ComputeTotp(factory.Time.GetUtcNow().UtcDateTime + (offset ?? TimeSpan.Zero));

    private async Task<HttpResponseMessage> PasswordAsync(string username)
    {
        using var client = factory.CreateClient();
        return await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password = Api.UserPassword }, _ct);
    }

    private async Task<HttpResponseMessage> SecondAsync(string token, string? code = null, string? recovery = null)
    {
        using var client = factory.CreateClient();
        return await client.PostAsJsonAsync("/api/v1/auth/login/mfa", new Dictionary<string, string?> { ["mfa_token"] = token, ["code"] = code, ["recovery_code"] = recovery }, _ct);
    }

    /// <summary>A user with a confirmed TOTP factor: (username, id, secret, recovery codes).</summary>
    private async Task<(string Username, string Id, string Secret, string[] Recovery)> EnrolledUserAsync(string[]? roles = null)
    {
        var (id, username) = await factory.CreateUserAsync(roles);
        using var me = factory.Bearer((await factory.LoginAsync(username, Api.UserPassword))["access_token"]!.GetValue<string>());
        var begun = await (await me.PostAsync("/api/v1/me/mfa/totp", null, _ct)).JsonAsync();
        var secret = begun["secret"]!.GetValue<string>();
        Assert.StartsWith("otpauth://totp/", begun["otpauthUri"]!.GetValue<string>(), StringComparison.Ordinal);
        var confirmed = await me.PostAsJsonAsync("/api/v1/me/mfa/totp/confirm", new { code = Code(secret) }, _ct);
        Assert.Equal(HttpStatusCode.OK, confirmed.StatusCode);
        var recovery = (await confirmed.JsonAsync())["recoveryCodes"]!.AsArray().Select(c => c!.GetValue<string>()).ToArray();
        Assert.Equal(10, recovery.Length);
        // The next code, not the one just used for confirming.
        factory.Time.Advance(TimeSpan.FromSeconds(30));
        return (username, id, secret, recovery);
    }

    [Fact]
    public async Task WithTotp_ThePasswordAloneGetsAChallenge_TheCodeGetsTokens_AndNoCodeWorksTwice()
    {
        var (username, _, secret, _) = await EnrolledUserAsync();

        var first = await PasswordAsync(username);
        Assert.Equal(HttpStatusCode.Unauthorized, first.StatusCode);
        var problem = await first.JsonAsync();
        Assert.Equal("https://fundament.dev/problems/mfa-required", problem["type"]!.GetValue<string>());
        Assert.Null(problem["access_token"]);
        var token = problem["mfa_token"]!.GetValue<string>();

        var wrongCode = (int.Parse(Code(secret), System.Globalization.CultureInfo.InvariantCulture) + 1) % 1_000_000;
        Assert.Equal(HttpStatusCode.Unauthorized, (await SecondAsync(token, wrongCode.ToString("D6", System.Globalization.CultureInfo.InvariantCulture))).StatusCode);
        var code = Code(secret);
        var ok = await SecondAsync(token, code);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var tokens = await ok.JsonAsync();
        using var me = factory.Bearer(tokens["access_token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await me.GetAsync("/api/v1/me", _ct)).StatusCode);

        // The challenge is spent, and the same code on a fresh challenge is a replay.
        Assert.Equal(HttpStatusCode.Unauthorized, (await SecondAsync(token, code)).StatusCode);
        var again = (await (await PasswordAsync(username)).JsonAsync())["mfa_token"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.Unauthorized, (await SecondAsync(again, code)).StatusCode);
        factory.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, (await SecondAsync(again, Code(secret))).StatusCode);

        // Bad input is a 400 and changes nothing.
        Assert.Equal(HttpStatusCode.BadRequest, (await SecondAsync(again, "12ab56")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await SecondAsync(again, Code(secret), "aaaaa-bbbbb")).StatusCode);
    }

    [Fact]
    public async Task RecoveryCodes_WorkOnce_AndRemovingTheFactorNeedsProof()
    {
        var (username, _, secret, recovery) = await EnrolledUserAsync();
        var token = (await (await PasswordAsync(username)).JsonAsync())["mfa_token"]!.GetValue<string>();
        var ok = await SecondAsync(token, recovery: recovery[0].ToUpperInvariant());
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var token2 = (await (await PasswordAsync(username)).JsonAsync())["mfa_token"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.Unauthorized, (await SecondAsync(token2, recovery: recovery[0])).StatusCode);

        using var me = factory.Bearer((await ok.JsonAsync())["access_token"]!.GetValue<string>());
        Assert.Equal(9, (await (await me.GetAsync("/api/v1/me/mfa", _ct)).JsonAsync())["recoveryCodesLeft"]!.GetValue<int>());
        using var wrong = new HttpRequestMessage(HttpMethod.Delete, "/api/v1/me/mfa") { Content = JsonContent.Create(new { code = "000000" }) };
        Assert.Equal(HttpStatusCode.BadRequest, (await me.SendAsync(wrong, _ct)).StatusCode);
        using var right = new HttpRequestMessage(HttpMethod.Delete, "/api/v1/me/mfa") { Content = JsonContent.Create(new { code = Code(secret) }) };
        Assert.Equal(HttpStatusCode.NoContent, (await me.SendAsync(right, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await PasswordAsync(username)).StatusCode);
    }

    [Fact]
    public async Task ARoleThatRequiresMfa_MakesItsHoldersEnrolAtLogin_AndTheyCannotRemoveIt()
    {
        using var admin = await factory.AdminAsync();
        var role = Api.UniqueName("mfa-role");
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/roles", new { name = role, permissions = new[] { "config.read" } }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/roles/{role}/mfa", new { required = true }, _ct)).StatusCode);
        var (_, username) = await factory.CreateUserAsync([role]);

        var challenge = await (await PasswordAsync(username)).JsonAsync();
        Assert.True(challenge["enrollment_required"]!.GetValue<bool>());
        var token = challenge["mfa_token"]!.GetValue<string>();
        using var anonymous = factory.CreateClient();
        var enrolment = await (await anonymous.PostAsJsonAsync("/api/v1/auth/mfa/enroll", new Dictionary<string, string> { ["mfa_token"] = token }, _ct)).JsonAsync();
        var secret = enrolment["secret"]!.GetValue<string>();
        var done = await SecondAsync(token, Code(secret));
        Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        var body = await done.JsonAsync();
        Assert.Equal(10, body["recovery_codes"]!.AsArray().Count);

        using var me = factory.Bearer(body["access_token"]!.GetValue<string>());
        var status = await (await me.GetAsync("/api/v1/me/mfa", _ct)).JsonAsync();
        Assert.True(status["totp"]!.GetValue<bool>());
        Assert.Equal([role], status["requiredBy"]!.AsArray().Select(r => r!.GetValue<string>()));
        factory.Time.Advance(TimeSpan.FromSeconds(30));
        using var remove = new HttpRequestMessage(HttpMethod.Delete, "/api/v1/me/mfa") { Content = JsonContent.Create(new { code = Code(secret) }) };
        Assert.Equal(HttpStatusCode.Conflict, (await me.SendAsync(remove, _ct)).StatusCode);

        var audit = await (await admin.GetAsync("/api/v1/audit?action=role.mfa", _ct)).JsonAsync();
        Assert.Contains(audit["items"]!.AsArray(), e => e!["target"]!.GetValue<string>() == $"role:{role}");
    }

    [Fact]
    public async Task AnAdministratorResetsAFactor_OnlyWithinTheirReach()
    {
        var (username, id, _, _) = await EnrolledUserAsync();
        // A users.write holder without admin cannot reset an admin's factor (a step towards taking the account over).
        var manager = Api.UniqueName("user-manager");
        using var admin = await factory.AdminAsync();
        // Everything the built-in 'user' role holds (so a plain user is within reach), and users.write.
        var userRole = (await (await admin.GetAsync("/api/v1/roles/user", _ct)).JsonAsync())["permissions"]!.AsArray().Select(p => p!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/roles", new { name = manager, permissions = userRole.Concat(["users.read", "users.write"]).Distinct().ToArray() }, _ct)).StatusCode);
        var (managerClient, _, _) = await factory.UserClientAsync(manager);
        var adminId = (await (await admin.GetAsync("/api/v1/me", _ct)).JsonAsync())["id"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.Forbidden, (await managerClient.DeleteAsync($"/api/v1/users/{adminId}/mfa", _ct)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await managerClient.DeleteAsync($"/api/v1/users/{id}/mfa", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await PasswordAsync(username)).StatusCode);
        var audit = await (await admin.GetAsync("/api/v1/audit?action=user.mfa.reset", _ct)).JsonAsync();
        Assert.Contains(audit["items"]!.AsArray(), e => e!["target"]!.GetValue<string>() == $"user:{id}");
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync($"/api/v1/users/{Guid.NewGuid()}/mfa", _ct)).StatusCode);
    }

    [Fact]
    public async Task AStolenTokenCannotGuessCodes_NorAnApiKeyManageFactors_NorAnAdminDropTheirOwnWithoutProof()
    {
        // An administrator (users.write, and allowed API keys) with a second factor.
        var (username, id, secret, _) = await EnrolledUserAsync(["admin"]);
        var tokens = (await SecondAsync((await (await PasswordAsync(username)).JsonAsync())["mfa_token"]!.GetValue<string>(), Code(secret))).JsonAsync();
        using var me = factory.Bearer((await tokens)["access_token"]!.GetValue<string>());
        // Wrong codes on /me/mfa count towards the account's lockout; then nothing is checked at all.
        HttpStatusCode last = default;
        for (var i = 0; i < 8 && last != HttpStatusCode.TooManyRequests; i++)
        {
            last = (await me.PostAsJsonAsync("/api/v1/me/mfa/recovery-codes", new { code = "000000" }, _ct)).StatusCode;
        }
        Assert.Equal(HttpStatusCode.TooManyRequests, last);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await me.PostAsJsonAsync("/api/v1/me/mfa/recovery-codes", new { code = Code(secret, TimeSpan.FromSeconds(30)) }, _ct)).StatusCode);
        factory.Time.Advance(TimeSpan.FromHours(2));
        var fresh = await SecondAsync((await (await PasswordAsync(username)).JsonAsync())["mfa_token"]!.GetValue<string>(), Code(secret));
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        using var again = factory.Bearer((await fresh.JsonAsync())["access_token"]!.GetValue<string>());

        // An API key of the account (a leaked CI key, say) cannot touch its factors.
        var key = (await (await again.PostAsJsonAsync("/api/v1/api-keys", new { name = "ci" }, _ct)).JsonAsync())["key"]!.GetValue<string>();
        using var withKey = factory.CreateClient();
        withKey.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("ApiKey", key);
        Assert.Equal(HttpStatusCode.Forbidden, (await withKey.PostAsJsonAsync("/api/v1/me/mfa/recovery-codes", new { code = Code(secret) }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await withKey.PostAsync("/api/v1/me/mfa/totp", null, _ct)).StatusCode);

        // Holding users.write is no way around the proof for one's own factor.
        Assert.Equal(HttpStatusCode.Forbidden, (await again.DeleteAsync($"/api/v1/users/{id}/mfa", _ct)).StatusCode);
        Assert.True((await (await again.GetAsync("/api/v1/me/mfa", _ct)).JsonAsync())["totp"]!.GetValue<bool>());
    }

    [Fact]
    public async Task RequiringMfaOnARole_EndsTheSessionsOfHoldersWithoutAFactor()
    {
        using var admin = await factory.AdminAsync();
        var role = Api.UniqueName("mfa-later");
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/roles", new { name = role, permissions = new[] { "config.read" } }, _ct)).StatusCode);
        var (_, username) = await factory.CreateUserAsync([role]);
        var before = await factory.LoginAsync(username, Api.UserPassword);

        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/roles/{role}/mfa", new { required = true }, _ct)).StatusCode);
        using var anonymous = factory.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = before["refresh_token"]!.GetValue<string>() }, _ct)).StatusCode);
        Assert.True((await (await PasswordAsync(username)).JsonAsync())["enrollment_required"]!.GetValue<bool>());
    }

    [Fact]
    public async Task AChallenge_TakesFiveAttempts_AndLivesFiveMinutes_AndTheSecretIsEncryptedAtRest()
    {
        var (username, id, secret, _) = await EnrolledUserAsync();
        var token = (await (await PasswordAsync(username)).JsonAsync())["mfa_token"]!.GetValue<string>();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await SecondAsync(token, "000000")).StatusCode);
        }
        var spent = await SecondAsync(token, Code(secret));
        Assert.Equal(HttpStatusCode.Unauthorized, spent.StatusCode);
        Assert.Contains("sign in with the password again", (await spent.JsonAsync())["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        // Wait out the lockout the wrong codes may have caused, then let a challenge expire.
        factory.Time.Advance(TimeSpan.FromHours(2));
        var late = (await (await PasswordAsync(username)).JsonAsync())["mfa_token"]!.GetValue<string>();
        factory.Time.Advance(TimeSpan.FromMinutes(6));
        Assert.Equal(HttpStatusCode.Unauthorized, (await SecondAsync(late, Code(secret))).StatusCode);

        await using var connection = await factory.Services.GetRequiredService<IDatabase>().OpenAsync(_ct);
        var stored = await connection.ExecuteScalarAsync<byte[]>(new CommandDefinition("SELECT secret FROM identity_mfa_totp WHERE user_id = @id", new { id }, cancellationToken: _ct));
        var raw = Base32Encoding.ToBytes(secret);
        Assert.False(stored!.AsSpan().IndexOf(raw) >= 0, "the TOTP secret is stored in the clear");
    }
}

public sealed class SqliteMfaTests(SqliteFundamentFactory factory) : MfaTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresMfaTests : MfaTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresMfaTests(PostgresFundamentFactory factory)
        : base(factory) => Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
