using System.Net;
using System.Net.Http.Json;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Identity;

public abstract class UsersApiTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task User_Lifecycle_CreateGetListUpdateDisableDelete()
    {
        using var admin = await factory.AdminAsync();
        var username = Api.UniqueName("life");
        var created = await admin.PostAsJsonAsync("/api/v1/users", new { username, password = Api.UserPassword, email = $"{username}@example.com", roles = new[] { "user" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var user = await created.JsonAsync();
        var id = user["id"]!.GetValue<string>();
        Assert.Equal($"/api/v1/users/{id}", created.Headers.Location!.ToString());
        Assert.Null(user["passwordHash"]);

        var fetched = await (await admin.GetAsync($"/api/v1/users/{id}", _ct)).JsonAsync();
        Assert.Equal(username, fetched["username"]!.GetValue<string>());

        var page = await (await admin.GetAsync($"/api/v1/users?q={username[..6]}&pageSize=10", _ct)).JsonAsync();
        Assert.Contains(page["items"]!.AsArray(), u => u!["id"]!.GetValue<string>() == id);
        Assert.True(page["total"]!.GetValue<long>() >= 1);

        var updated = await admin.PatchAsJsonAsync($"/api/v1/users/{id}", new { email = "", roles = new[] { "guest" } }, _ct);
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        var body = await updated.JsonAsync();
        Assert.Null(body["email"]);
        Assert.Equal("guest", body["roles"]![0]!.GetValue<string>());

        Assert.True((await (await admin.PostAsync($"/api/v1/users/{id}/disable", null, _ct)).JsonAsync())["disabled"]!.GetValue<bool>());
        Assert.False((await (await admin.PostAsync($"/api/v1/users/{id}/enable", null, _ct)).JsonAsync())["disabled"]!.GetValue<bool>());

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/users/{id}", _ct)).StatusCode);
        await (await admin.GetAsync($"/api/v1/users/{id}", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Username_IsUniqueIgnoringCase()
    {
        var (_, username) = await factory.CreateUserAsync();
        using var admin = await factory.AdminAsync();
        var again = await admin.PostAsJsonAsync("/api/v1/users", new { username = username.ToUpperInvariant(), password = Api.UserPassword }, _ct);
        await again.AssertProblemAsync(HttpStatusCode.Conflict);
    }

    [Theory]
    [InlineData("short-pw1")]
    [InlineData("passwordpassword")]
    [InlineData("qwerty123456")]
    [InlineData("1q2w3e4r5t6y")]
    [InlineData("aaaaaaaaaaaaaaaa")]
    [InlineData("sunshine2024!!")]
    public async Task WeakPassword_IsRejectedWithAReason(string password)
    {
        using var admin = await factory.AdminAsync();
        var response = await admin.PostAsJsonAsync("/api/v1/users", new { username = Api.UniqueName(), password }, _ct);
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.NotNull((await response.JsonAsync())["errors"]!["password"]);
    }

    [Fact]
    public async Task Guest_CannotCreateUsers()
    {
        var (guest, _, _) = await factory.UserClientAsync("guest");
        var response = await guest.PostAsJsonAsync("/api/v1/users", new { username = Api.UniqueName(), password = Api.UserPassword }, _ct);
        await response.AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Anonymous_GetsUnauthorized()
    {
        using var anonymous = factory.CreateClient();
        await (await anonymous.GetAsync("/api/v1/users", _ct)).AssertProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task UserManager_CannotGrantAdmin()
    {
        using var admin = await factory.AdminAsync();
        var roleName = Api.UniqueName("mgr").ToLowerInvariant();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/roles", new { name = roleName, permissions = new[] { "users.read", "users.write", "media.shared" } }, _ct)).StatusCode);
        var (manager, _, _) = await factory.UserClientAsync(roleName);

        // guest grants media.shared, which the manager holds: no escalation.
        var plain = await manager.PostAsJsonAsync("/api/v1/users", new { username = Api.UniqueName(), password = Api.UserPassword, roles = new[] { "guest" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, plain.StatusCode);
        var escalate = await manager.PostAsJsonAsync("/api/v1/users", new { username = Api.UniqueName(), password = Api.UserPassword, roles = new[] { "admin" } }, _ct);
        await escalate.AssertProblemAsync(HttpStatusCode.Forbidden);
        var selfPromote = await manager.PostAsJsonAsync("/api/v1/roles", new { name = Api.UniqueName("x").ToLowerInvariant(), permissions = new[] { "*" } }, _ct);
        await selfPromote.AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task LastAdmin_CannotBeDisabledOrDeleted()
    {
        using var admin = await factory.AdminAsync();
        var me = await (await admin.GetAsync("/api/v1/me", _ct)).JsonAsync();
        var adminId = me["id"]!.GetValue<string>();
        var users = await (await admin.GetAsync("/api/v1/users?pageSize=500", _ct)).JsonAsync();
        var otherAdmins = users["items"]!.AsArray().Count(u => u!["id"]!.GetValue<string>() != adminId && u["roles"]!.AsArray().Any(r => r!.GetValue<string>() == "admin") && !u["disabled"]!.GetValue<bool>());
        Assert.Equal(0, otherAdmins);

        await (await admin.PostAsync($"/api/v1/users/{adminId}/disable", null, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.DeleteAsync($"/api/v1/users/{adminId}", _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.PatchAsJsonAsync($"/api/v1/users/{adminId}", new { roles = new[] { "user" } }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task DisablingAUser_StopsTheirAccessTokenAtOnce()
    {
        var (client, id, _) = await factory.UserClientAsync("user");
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/me", _ct)).StatusCode);
        using var admin = await factory.AdminAsync();
        (await admin.PostAsync($"/api/v1/users/{id}/disable", null, _ct)).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/me", _ct)).StatusCode);
    }

    [Fact]
    public async Task ChangeOwnPassword_EndsOtherSessions()
    {
        var (_, username) = await factory.CreateUserAsync();
        var other = await factory.LoginAsync(username, Api.UserPassword);
        var current = await factory.LoginAsync(username, Api.UserPassword);
        using var client = factory.Bearer(current["access_token"]!.GetValue<string>());

        var wrong = await client.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = "nope-nope-nope-1", newPassword = "Another-Long-Password-88" }, _ct);
        await wrong.AssertProblemAsync(HttpStatusCode.BadRequest);
        var ok = await client.PostAsJsonAsync("/api/v1/me/password", new { currentPassword = Api.UserPassword, newPassword = "Another-Long-Password-88" }, _ct);
        Assert.Equal(HttpStatusCode.NoContent, ok.StatusCode);

        using var anonymous = factory.CreateClient();
        await (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = other["refresh_token"]!.GetValue<string>() }, _ct)).AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = current["refresh_token"]!.GetValue<string>() }, _ct)).StatusCode);
        await factory.LoginAsync(username, "Another-Long-Password-88");
    }

    [Fact]
    public async Task CustomRole_GrantsItsPermissions()
    {
        using var admin = await factory.AdminAsync();
        var roleName = Api.UniqueName("auditor").ToLowerInvariant();
        var created = await admin.PostAsJsonAsync("/api/v1/roles", new { name = roleName, description = "reads the audit log", permissions = new[] { "audit.read" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var (auditor, _, _) = await factory.UserClientAsync(roleName);

        Assert.Equal(HttpStatusCode.OK, (await auditor.GetAsync("/api/v1/audit", _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await auditor.GetAsync("/api/v1/users", _ct)).StatusCode);

        await (await admin.PutAsJsonAsync("/api/v1/roles/admin", new { permissions = Array.Empty<string>() }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.PostAsJsonAsync("/api/v1/roles", new { name = "bad", permissions = new[] { "no.such.permission" } }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/roles/{roleName}", _ct)).StatusCode);
    }
}

public sealed class SqliteUsersApiTests(SqliteFundamentFactory factory) : UsersApiTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresUsersApiTests : UsersApiTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresUsersApiTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
