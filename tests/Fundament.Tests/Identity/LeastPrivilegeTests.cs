using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Identity;

/// <summary>
/// The escalations an outside look found, each tried as the user who found it would: no
/// permission leads to a bigger one, and taking something away takes effect at once.
/// </summary>
public abstract class LeastPrivilegeTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    /// <summary>A custom role holding exactly <paramref name="permissions"/>, and a signed-in user holding only it.</summary>
    private async Task<(HttpClient Client, string UserId, string Username)> HolderOfAsync(params string[] permissions)
    {
        using var admin = await factory.AdminAsync();
        var role = "r" + Guid.NewGuid().ToString("N")[..12];
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/roles", new { name = role, permissions }, _ct)).StatusCode);
        var (id, username) = await factory.CreateUserAsync([role]);
        var tokens = await factory.LoginAsync(username, Api.UserPassword);
        return (factory.Bearer(tokens["access_token"]!.GetValue<string>()), id, username);
    }

    private async Task<string> AdminIdAsync()
    {
        using var admin = await factory.AdminAsync();
        return (await (await admin.GetAsync("/api/v1/me", _ct)).JsonAsync())["id"]!.GetValue<string>();
    }

    private static async Task AssertMissingAsync(HttpResponseMessage response, string permission)
    {
        await response.AssertProblemAsync(HttpStatusCode.Forbidden);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Contains(permission, problem["missingPermissions"]!.AsArray().Select(p => p!.GetValue<string>()));
    }

    [Fact]
    public async Task UsersWrite_CannotTakeOverAnAdministrator_ButStillManagesOrdinaryUsers()
    {
        // A helpdesk that may manage ordinary users holds what they hold, and no more.
        var (helpdesk, _, _) = await HolderOfAsync("users.read", "users.write", "apikeys.own", "media.own", "media.shared", "webhooks.own");
        var adminId = await AdminIdAsync();
        await AssertMissingAsync(await helpdesk.PatchAsJsonAsync($"/api/v1/users/{adminId}", new { password = "Hijacked-Password-1234" }, _ct), "*");
        await AssertMissingAsync(await helpdesk.PatchAsJsonAsync($"/api/v1/users/{adminId}", new { email = "attacker@example.com" }, _ct), "*");
        await AssertMissingAsync(await helpdesk.PostAsync($"/api/v1/users/{adminId}/disable", null, _ct), "*");
        await AssertMissingAsync(await helpdesk.DeleteAsync($"/api/v1/users/{adminId}", _ct), "*");
        // The admin still signs in with the old password.
        await factory.LoginAsync("admin", FundamentFactory.AdminPassword);

        // A guest holds less than the helpdesk, so it is within reach; a user holding a permission the
        // helpdesk lacks would not be.
        var (richerId, _) = await factory.CreateUserAsync(["user", "guest"]);
        Assert.Equal(HttpStatusCode.OK, (await helpdesk.PatchAsJsonAsync($"/api/v1/users/{richerId}", new { email = "fine@example.com" }, _ct)).StatusCode);
        var (_, auditorUser, _) = await HolderOfAsync("audit.read");
        await AssertMissingAsync(await helpdesk.PatchAsJsonAsync($"/api/v1/users/{auditorUser}", new { email = "no@example.com" }, _ct), "audit.read");

        // An ordinary user is within reach: a password set for them ends what they had.
        var (plainId, plainName) = await factory.CreateUserAsync(["user"]);
        var plainTokens = await factory.LoginAsync(plainName, Api.UserPassword);
        using var plain = factory.Bearer(plainTokens["access_token"]!.GetValue<string>());
        var key = (await (await plain.PostAsJsonAsync("/api/v1/api-keys", new { name = "kept?" }, _ct)).JsonAsync())["key"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, (await helpdesk.PatchAsJsonAsync($"/api/v1/users/{plainId}", new { password = "Reset-By-Helpdesk-2026" }, _ct)).StatusCode);
        using var withKey = factory.WithApiKey(key);
        Assert.Equal(HttpStatusCode.Unauthorized, (await withKey.GetAsync("/api/v1/me", _ct)).StatusCode);
        using var anonymous = factory.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = plainTokens["refresh_token"]!.GetValue<string>() }, _ct)).StatusCode);
    }

    [Fact]
    public async Task ClientsWrite_CannotRotateTheSecretOfAMorePrivilegedClient()
    {
        using var admin = await factory.AdminAsync();
        var powerful = await (await admin.PostAsJsonAsync("/api/v1/clients", new { name = Api.UniqueName("powerful"), roles = new[] { "admin" } }, _ct)).JsonAsync();
        var modest = await (await admin.PostAsJsonAsync("/api/v1/clients", new { name = Api.UniqueName("modest") }, _ct)).JsonAsync();
        var (clients, _, _) = await HolderOfAsync("clients.read", "clients.write");
        var powerfulId = powerful["client_id"]!.GetValue<string>();
        await AssertMissingAsync(await clients.PostAsync($"/api/v1/clients/{powerfulId}/rotate-secret", null, _ct), "*");
        await AssertMissingAsync(await clients.PatchAsJsonAsync($"/api/v1/clients/{powerfulId}", new { disabled = true }, _ct), "*");
        await AssertMissingAsync(await clients.DeleteAsync($"/api/v1/clients/{powerfulId}", _ct), "*");
        Assert.Equal(HttpStatusCode.OK, (await clients.PostAsync($"/api/v1/clients/{modest["client_id"]!.GetValue<string>()}/rotate-secret", null, _ct)).StatusCode);
        // The powerful client's secret still works.
        using var anonymous = factory.CreateClient();
        var token = await anonymous.PostAsync("/oauth2/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = powerfulId, ["client_secret"] = powerful["client_secret"]!.GetValue<string>(),
        }), _ct);
        Assert.Equal(HttpStatusCode.OK, token.StatusCode);
    }

    [Fact]
    public async Task PowerBoundByName_CountsLikeAPermission()
    {
        using var admin = await factory.AdminAsync();
        var team = "team" + Guid.NewGuid().ToString("N")[..8];
        // A role worth nothing by its permissions, and a vault policy that makes it worth having.
        var role = team + "-vault";
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/roles", new { name = role, permissions = new[] { "media.shared" } }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"role:{role}", pathPrefix = team, capabilities = new[] { "read" } }, _ct)).StatusCode);

        // An API key cannot carry it, nor can a helpdesk hand it out.
        var (user, _, _) = await factory.UserClientAsync("user");
        await AssertMissingAsync(await user.PostAsJsonAsync("/api/v1/api-keys", new { name = "sneaky", roles = new[] { role } }, _ct), "vault.admin");
        var (helpdesk, _, _) = await HolderOfAsync("users.read", "users.write", "apikeys.own", "media.own", "media.shared", "webhooks.own");
        var (plainId, _) = await factory.CreateUserAsync(["user"]);
        await AssertMissingAsync(await helpdesk.PatchAsJsonAsync($"/api/v1/users/{plainId}", new { roles = new[] { "user", role } }, _ct), "vault.admin");

        // A plain user with a policy of its own is out of the helpdesk's reach.
        var (vaultUserId, _) = await factory.CreateUserAsync(["user"]);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"user:{vaultUserId}", pathPrefix = team, capabilities = new[] { "read" } }, _ct)).StatusCode);
        await AssertMissingAsync(await helpdesk.PatchAsJsonAsync($"/api/v1/users/{vaultUserId}", new { password = "Hijacked-Password-1234" }, _ct), "vault.admin");

        // A client with a registry grant is out of reach of clients.write alone.
        var granted = await (await admin.PostAsJsonAsync("/api/v1/clients", new { name = Api.UniqueName("payments"), roles = new[] { "service" } }, _ct)).JsonAsync();
        var grantedId = granted["client_id"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/registry/grants", new { clientId = grantedId, service = "payments" + team }, _ct)).StatusCode);
        var (clients, _, _) = await HolderOfAsync("clients.read", "clients.write", "registry.read", "registry.register.own", "config.read.own");
        await AssertMissingAsync(await clients.PostAsync($"/api/v1/clients/{grantedId}/rotate-secret", null, _ct), "registry.write");
    }

    [Fact]
    public async Task RotatingAClientSecret_EndsTheTokensMintedWithTheOldOne()
    {
        using var admin = await factory.AdminAsync();
        var (service, clientId) = await factory.ServiceClientAsync(Api.UniqueName("rotated"));
        Assert.Equal(HttpStatusCode.OK, (await service.GetAsync("/api/v1/registry/services", _ct)).StatusCode);
        // Tokens carry whole seconds: move past the second the token was minted in.
        factory.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync($"/api/v1/clients/{clientId}/rotate-secret", null, _ct)).StatusCode);
        await (await service.GetAsync("/api/v1/registry/services", _ct)).AssertProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task VaultPolicies_GrantOnlyWhatTheGranterHolds()
    {
        var team = "team" + Guid.NewGuid().ToString("N")[..8];
        var (granter, granterId, _) = await HolderOfAsync("vault.policies");
        using var admin = await factory.AdminAsync();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/secret-policies",
            new { principal = $"user:{granterId}", pathPrefix = team, capabilities = new[] { "read", "list" } }, _ct)).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await granter.PostAsJsonAsync("/api/v1/secret-policies",
            new { principal = $"role:{team}-readers", pathPrefix = $"{team}/reports", capabilities = new[] { "read" } }, _ct)).StatusCode);
        await AssertMissingAsync(await granter.PostAsJsonAsync("/api/v1/secret-policies",
            new { principal = $"user:{granterId}", pathPrefix = "", capabilities = new[] { "read" } }, _ct), "vault:read:*");
        await AssertMissingAsync(await granter.PostAsJsonAsync("/api/v1/secret-policies",
            new { principal = $"user:{granterId}", pathPrefix = team, capabilities = new[] { "write" } }, _ct), $"vault:write:{team}");
        await AssertMissingAsync(await granter.PostAsJsonAsync("/api/v1/secret-policies",
            new { principal = $"role:{team}-readers", pathPrefix = "other", capabilities = new[] { "read" } }, _ct), "vault:read:other");
    }

    [Fact]
    public async Task RegistryWrite_DoesNotExposeConfiguration()
    {
        var service = "cfg" + Guid.NewGuid().ToString("N")[..8];
        using var admin = await factory.AdminAsync();
        (await admin.PutAsJsonAsync("/api/v1/config/entries", new { service, environment = "*", key = "db.password.hint", value = "in the vault" }, _ct)).EnsureSuccessStatusCode();
        var (registrar, _, _) = await HolderOfAsync("registry.write");
        var registered = await (await registrar.PostAsJsonAsync("/api/v1/registry/instances", new { service, address = "127.0.0.1", port = 9500 }, _ct)).JsonAsync();
        Assert.Empty(registered["config"]!.AsObject());
        var byAdmin = await (await admin.PostAsJsonAsync("/api/v1/registry/instances", new { service, address = "127.0.0.1", port = 9501 }, _ct)).JsonAsync();
        Assert.Equal("in the vault", byAdmin["config"]!["db.password.hint"]!.GetValue<string>());
    }

    [Fact]
    public async Task PasswordReset_RevokesTheAccountsApiKeys()
    {
        var username = Api.UniqueName("reset");
        var (_, _) = await factory.CreateUserAsync(["user"], email: $"{username}@example.com", username: username);
        var tokens = await factory.LoginAsync(username, Api.UserPassword);
        using var user = factory.Bearer(tokens["access_token"]!.GetValue<string>());
        var key = (await (await user.PostAsJsonAsync("/api/v1/api-keys", new { name = "left behind" }, _ct)).JsonAsync())["key"]!.GetValue<string>();
        using var anonymous = factory.CreateClient();
        Assert.Equal(HttpStatusCode.Accepted, (await anonymous.PostAsJsonAsync("/api/v1/auth/password-reset", new { username }, _ct)).StatusCode);
        var message = factory.Notifications.Sent.Last(m => m.To == $"{username}@example.com");
        var token = System.Text.RegularExpressions.Regex.Match(message.Body, "\"token\":\"([^\"]+)\"").Groups[1].Value;
        Assert.Equal(HttpStatusCode.NoContent, (await anonymous.PostAsJsonAsync("/api/v1/auth/password-reset/confirm", new { token, newPassword = "After-The-Reset-2026" }, _ct)).StatusCode);
        using var withKey = factory.WithApiKey(key);
        Assert.Equal(HttpStatusCode.Unauthorized, (await withKey.GetAsync("/api/v1/me", _ct)).StatusCode);
    }

    [Fact]
    public async Task ChangingOnesOwnPassword_RevokesApiKeysUnlessAskedToKeepThem_AndIsThrottled()
    {
        var (_, username) = await factory.CreateUserAsync(["user"]);
        var tokens = await factory.LoginAsync(username, Api.UserPassword);
        using var user = factory.Bearer(tokens["access_token"]!.GetValue<string>());
        var kept = (await (await user.PostAsJsonAsync("/api/v1/api-keys", new { name = "ci" }, _ct)).JsonAsync())["key"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.NoContent, (await user.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = Api.UserPassword, newPassword = "Second-Password-2026", keepApiKeys = true }, _ct)).StatusCode);
        using (var withKept = factory.WithApiKey(kept))
        {
            Assert.Equal(HttpStatusCode.OK, (await withKept.GetAsync("/api/v1/me", _ct)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await user.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = "Second-Password-2026", newPassword = "Third-Password-2026!" }, _ct)).StatusCode);
        using (var withRevoked = factory.WithApiKey(kept))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await withRevoked.GetAsync("/api/v1/me", _ct)).StatusCode);
        }

        // A stolen access token is not a way to guess the password: wrong guesses lock like logins.
        HttpResponseMessage last = null!;
        for (var i = 0; i < 5; i++)
        {
            last = await user.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = $"Guess-Number-{i}-0000", newPassword = "Never-Set-Password-1" }, _ct);
        }
        await last.AssertProblemAsync(HttpStatusCode.TooManyRequests);
        Assert.True(last.Headers.RetryAfter is not null);
        await (await user.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = "Third-Password-2026!", newPassword = "Never-Set-Password-1" }, _ct)).AssertProblemAsync(HttpStatusCode.TooManyRequests);
        using var anonymous = factory.CreateClient();
        Assert.Equal(HttpStatusCode.TooManyRequests, (await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username, password = "Third-Password-2026!" }, _ct)).StatusCode);
    }

    [Fact]
    public async Task TakingSomethingAway_TakesEffectWithinFiveSeconds_NotAtTokenExpiry()
    {
        using var admin = await factory.AdminAsync();
        var (reader, readerId, _) = await HolderOfAsync("users.read");
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync("/api/v1/users", _ct)).StatusCode);
        var me = await (await reader.GetAsync("/api/v1/me", _ct)).JsonAsync();
        var role = me["roles"]![0]!.GetValue<string>();

        // The role is taken away: the token still names it, but it stops counting.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync($"/api/v1/users/{readerId}", new { roles = new[] { "user" } }, _ct)).StatusCode);
        factory.Time.Advance(TimeSpan.FromSeconds(6));
        await (await reader.GetAsync("/api/v1/users", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);

        // A role's permissions change: everyone holding it loses what it no longer grants.
        var (lister, _, _) = await HolderOfAsync("users.read", "roles.read");
        var listerRole = (await (await lister.GetAsync("/api/v1/me", _ct)).JsonAsync())["roles"]![0]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/roles/{listerRole}", new { permissions = new[] { "roles.read" } }, _ct)).StatusCode);
        factory.Time.Advance(TimeSpan.FromSeconds(6));
        await (await lister.GetAsync("/api/v1/users", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.OK, (await lister.GetAsync("/api/v1/roles", _ct)).StatusCode);

        // A disabled client is out.
        var (client, clientId) = await factory.ServiceClientAsync(Api.UniqueName("svc"), "service");
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchAsJsonAsync($"/api/v1/clients/{clientId}", new { disabled = true }, _ct)).StatusCode);
        factory.Time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/me", _ct)).StatusCode);
        _ = role;
    }
}

public sealed class SqliteLeastPrivilegeTests(SqliteFundamentFactory factory) : LeastPrivilegeTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresLeastPrivilegeTests : LeastPrivilegeTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresLeastPrivilegeTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}

/// <summary>A change made through one replica reaches the other's authorization within the same five seconds.</summary>
public sealed class RevocationReplicaTests
{
    [Fact]
    public async Task ARoleTakenAwayOnOneReplica_StopsCountingOnTheOther()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pair = await ReplicaPair.StartAsync();
        using var adminA = await pair.A.AdminAsync();
        Assert.Equal(HttpStatusCode.Created, (await adminA.PostAsJsonAsync("/api/v1/roles", new { name = "auditor", permissions = new[] { "audit.read" } }, ct)).StatusCode);
        var (userId, username) = await pair.A.CreateUserAsync(["auditor"]);
        var tokens = await pair.B.LoginAsync(username, Api.UserPassword);
        using var onB = pair.B.Bearer(tokens["access_token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/audit?limit=1", ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await adminA.PatchAsJsonAsync($"/api/v1/users/{userId}", new { roles = new[] { "user" } }, ct)).StatusCode);
        pair.A.Time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(HttpStatusCode.Forbidden, (await onB.GetAsync("/api/v1/audit?limit=1", ct)).StatusCode);
    }
}
