using System.Net;
using System.Net.Http.Json;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Identity;

/// <summary>
/// Two replicas of the control role on one PostgreSQL database: what one issues the other accepts,
/// and their concurrent audit appends form one valid chain.
/// </summary>
public sealed class ReplicaTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private ReplicaPair _pair = null!;

    private ConfiguredFundamentFactory ReplicaA => _pair.A;

    private ConfiguredFundamentFactory ReplicaB => _pair.B;

    public async ValueTask InitializeAsync() => _pair = await ReplicaPair.StartAsync(new KeyValuePair<string, string>("Fundament:Roles", "control"));

    public async ValueTask DisposeAsync()
    {
        if (_pair is not null)
        {
            await _pair.DisposeAsync();
        }
    }

    [Fact]
    public async Task TokensAndSessions_IssuedByOneReplica_WorkOnTheOther()
    {
        var tokens = await ReplicaA.LoginAsync("admin", FundamentFactory.AdminPassword);
        using var onB = ReplicaB.Bearer(tokens["access_token"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/me", _ct)).StatusCode);

        var refresh = tokens["refresh_token"]!.GetValue<string>();
        using var anonymousB = ReplicaB.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await anonymousB.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = refresh }, _ct)).StatusCode);
        using var anonymousA = ReplicaA.CreateClient();
        await (await anonymousA.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = refresh }, _ct)).AssertProblemAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task ConcurrentAppendsFromBothReplicas_FormOneValidChain()
    {
        var logins = Enumerable.Range(0, 24).Select(i => (i % 2 == 0 ? ReplicaA : ReplicaB).LoginAsync("admin", FundamentFactory.AdminPassword));
        await Task.WhenAll(logins);

        using var admin = await ReplicaB.AdminAsync();
        var verification = await (await admin.GetAsync("/api/v1/audit/verify", _ct)).JsonAsync();
        Assert.True(verification["valid"]!.GetValue<bool>(), verification.ToJsonString());
        Assert.True(verification["entries"]!.GetValue<long>() >= 25);
    }

    [Fact]
    public async Task AControlOnlyNode_KnowsThePermissionsAndEventsOfModulesItDoesNotRun()
    {
        // Media runs elsewhere; roles made here must still grant media.own, and webhooks made here must name media.ready.
        using var admin = await ReplicaA.AdminAsync();
        var permissions = await (await admin.GetAsync("/api/v1/roles/permissions", _ct)).JsonAsync();
        Assert.Contains("media.own", permissions.AsArray().Select(p => p!.GetValue<string>()));

        var role = await admin.PostAsJsonAsync("/api/v1/roles", new { name = "uploader", permissions = new[] { "media.own", "media.shared" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, role.StatusCode);
        var webhook = await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = "https://hooks.example.com/media", events = new[] { "media.ready" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, webhook.StatusCode);

        // The built-in user role, rewritten by every node at start, keeps the media permissions.
        var user = await (await admin.GetAsync("/api/v1/roles/user", _ct)).JsonAsync();
        Assert.Contains("media.own", user["permissions"]!.AsArray().Select(p => p!.GetValue<string>()));
    }
}
