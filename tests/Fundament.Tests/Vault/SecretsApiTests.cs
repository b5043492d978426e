using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Fundament.Core.Storage;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Fundament.Tests.Vault;

public abstract class SecretsApiTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static string NewPath(string prefix = "app") => $"{prefix}/{Guid.NewGuid():N}/db";

    [Fact]
    public async Task Secrets_AreVersioned_AndAnyJsonValueRoundTrips()
    {
        using var admin = await factory.AdminAsync();
        var path = NewPath();
        Assert.Equal(1, (await (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "first" }, _ct)).JsonAsync())["version"]!.GetValue<int>());
        Assert.Equal(2, (await (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = new { user = "app", password = "s3cr3t" } }, _ct)).JsonAsync())["version"]!.GetValue<int>());

        var current = await (await admin.GetAsync($"/api/v1/secrets/{path}", _ct)).JsonAsync();
        Assert.Equal(2, current["version"]!.GetValue<int>());
        Assert.Equal("s3cr3t", current["value"]!["password"]!.GetValue<string>());
        Assert.NotNull(current["createdAt"]);
        var first = await (await admin.GetAsync($"/api/v1/secrets/{path}?version=1", _ct)).JsonAsync();
        Assert.Equal("first", first["value"]!.GetValue<string>());
        await (await admin.GetAsync($"/api/v1/secrets/{path}?version=9", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await admin.GetAsync($"/api/v1/secrets/{NewPath()}", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task NewVersions_AreDomainEventsOnTheBus_WithoutTheirValue()
    {
        using var admin = await factory.AdminAsync();
        var watcher = "w" + Guid.NewGuid().ToString("N")[..10];
        foreach (var topic in new[] { "fundament.secret.created", "fundament.secret.rotated" })
        {
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = watcher }, _ct)).StatusCode);
        }
        // Webhooks: secret events reach only a subscription that names them, which needs vault.admin; an all-events one never gets them.
        var everything = await (await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = "https://hooks.example.test/all", events = new[] { "*" }, allOwners = true }, _ct)).JsonAsync();
        var named = await (await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = "https://hooks.example.test/secrets", events = new[] { "secret.rotated" }, allOwners = true }, _ct)).JsonAsync();
        var (user, _, _) = await factory.UserClientAsync();
        using var _1 = user;
        var refused = await user.PostAsJsonAsync("/api/v1/webhooks", new { url = "https://hooks.example.test/mine", events = new[] { "secret.rotated" } }, _ct);
        await refused.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains("vault.admin", (await refused.JsonAsync())["errors"]!["events"]![0]!.GetValue<string>());

        var path = NewPath();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "first-value" }, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "second-value" }, _ct)).StatusCode);
        var publisher = factory.Services.GetRequiredService<Fundament.Vault.Secrets.VaultEventPublisher>();
        Assert.True(await publisher.PassAsync(_ct) >= 2);
        Assert.Equal(0, await publisher.PassAsync(_ct));

        async Task<JsonNode> OneAsync(string topic)
        {
            var pulled = (await (await admin.PostAsync($"/api/v1/topics/{topic}/subscriptions/{watcher}/pull?max=100", null, _ct)).JsonAsync())["messages"]!.AsArray();
            return Assert.Single(pulled, m => m!["body"]!["data"]!["path"]!.GetValue<string>() == path)!;
        }
        var created = await OneAsync("fundament.secret.created");
        Assert.Equal(1, created["body"]!["data"]!["version"]!.GetValue<int>());
        var rotated = await OneAsync("fundament.secret.rotated");
        Assert.Equal(2, rotated["body"]!["data"]!["version"]!.GetValue<int>());
        Assert.Equal("system", rotated["key"]!.GetValue<string>());
        Assert.DoesNotContain("value", rotated.ToJsonString(), StringComparison.Ordinal);

        await factory.Services.RelayEventsAsync(_ct);
        async Task<List<string>> DeliveredAsync(JsonNode hook) => (await (await admin.GetAsync($"/api/v1/webhooks/{hook["id"]!.GetValue<string>()}/deliveries", _ct)).JsonAsync())
            .AsArray().Select(d => d!["event"]!.GetValue<string>()).ToList();
        Assert.DoesNotContain(await DeliveredAsync(everything), e => e.StartsWith("secret.", StringComparison.Ordinal));
        Assert.Contains("secret.rotated", await DeliveredAsync(named));
        Assert.DoesNotContain("secret.created", await DeliveredAsync(named));
        await admin.DeleteAsync($"/api/v1/webhooks/{everything["id"]!.GetValue<string>()}", _ct);
        await admin.DeleteAsync($"/api/v1/webhooks/{named["id"]!.GetValue<string>()}", _ct);
    }

    [Fact]
    public async Task APathWithEscapedSlashes_AsGeneratedClientsSendIt_IsTheSameSecret()
    {
        using var admin = await factory.AdminAsync();
        var path = NewPath();
        var escaped = path.Replace("/", "%2F", StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/secrets/{escaped}", new { value = "via-escaped" }, _ct)).StatusCode);
        Assert.Equal("via-escaped", (await (await admin.GetAsync($"/api/v1/secrets/{path}", _ct)).JsonAsync())["value"]!.GetValue<string>());
        Assert.Equal(1, (await (await admin.GetAsync($"/api/v1/secret-metadata/{escaped.ToLowerInvariant().Replace("%2f", "%2F", StringComparison.Ordinal)}", _ct)).JsonAsync())["currentVersion"]!.GetValue<int>());
        // Still one path grammar: an escaped slash cannot smuggle an empty or dot segment in.
        await (await admin.GetAsync($"/api/v1/secrets/app%2F%2Fx", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync($"/api/v1/secrets/app%2F..%2Fx", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task CheckAndSet_RefusesAStaleWrite()
    {
        using var admin = await factory.AdminAsync();
        var path = NewPath();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "a", cas = 0 }, _ct)).StatusCode);
        await (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "b", cas = 0 }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "b", cas = 7 }, _ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "b", cas = 1 }, _ct)).StatusCode);
        Assert.Equal("b", (await (await admin.GetAsync($"/api/v1/secrets/{path}", _ct)).JsonAsync())["value"]!.GetValue<string>());
    }

    [Fact]
    public async Task MaxVersions_DropsTheOldest_AndMetadataListsVersionsWithoutValues()
    {
        using var admin = await factory.AdminAsync();
        var path = NewPath();
        for (var i = 1; i <= 4; i++)
        {
            (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = $"v{i}", maxVersions = 2 }, _ct)).EnsureSuccessStatusCode();
        }
        var metadata = await (await admin.GetAsync($"/api/v1/secret-metadata/{path}", _ct)).JsonAsync();
        Assert.Equal(4, metadata["currentVersion"]!.GetValue<int>());
        Assert.Equal([3, 4], metadata["versions"]!.AsArray().Select(v => v!["version"]!.GetValue<int>()));
        Assert.DoesNotContain("v4", metadata.ToJsonString(), StringComparison.Ordinal);
        await (await admin.GetAsync($"/api/v1/secrets/{path}?version=1", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task SoftDelete_Undelete_Destroy()
    {
        using var admin = await factory.AdminAsync();
        var path = NewPath();
        await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "one" }, _ct);
        await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "two" }, _ct);

        Assert.Equal(1, (await (await admin.DeleteAsync($"/api/v1/secrets/{path}", _ct)).JsonAsync())["changed"]!.GetValue<int>());
        await (await admin.GetAsync($"/api/v1/secrets/{path}", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync($"/api/v1/secret-undelete/{path}", new { versions = new[] { 2 } }, _ct)).StatusCode);
        Assert.Equal("two", (await (await admin.GetAsync($"/api/v1/secrets/{path}", _ct)).JsonAsync())["value"]!.GetValue<string>());

        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsJsonAsync($"/api/v1/secret-destroy/{path}", new { versions = new[] { 1 } }, _ct)).StatusCode);
        await (await admin.GetAsync($"/api/v1/secrets/{path}?version=1", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await admin.PostAsJsonAsync($"/api/v1/secret-undelete/{path}", new { versions = new[] { 1 } }, _ct)).Content.ReadAsStringAsync(_ct);
        await (await admin.GetAsync($"/api/v1/secrets/{path}?version=1", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        var metadata = await (await admin.GetAsync($"/api/v1/secret-metadata/{path}", _ct)).JsonAsync();
        Assert.True(metadata["versions"]![0]!["destroyed"]!.GetValue<bool>());

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/secret-metadata/{path}", _ct)).StatusCode);
        await (await admin.GetAsync($"/api/v1/secret-metadata/{path}", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Client_WithoutPolicy_IsDenied_AndTheDenialIsAudited()
    {
        using var admin = await factory.AdminAsync();
        var path = NewPath("orders");
        await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "pw" }, _ct);
        var (service, clientId) = await factory.ServiceClientAsync(Api.UniqueName("svc"));

        await (await service.GetAsync($"/api/v1/secrets/{path}", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        var audit = await (await admin.GetAsync($"/api/v1/audit?action=secret.read&actor=client:{clientId}", _ct)).JsonAsync();
        var entry = audit["items"]!.AsArray().Single()!;
        Assert.Equal("denied", entry["outcome"]!.GetValue<string>());
        Assert.Equal($"secret:{path}", entry["target"]!.GetValue<string>());
    }

    [Fact]
    public async Task Policy_GrantsExactlyItsPrefixAndCapabilities()
    {
        using var admin = await factory.AdminAsync();
        var id = Guid.NewGuid().ToString("N");
        await admin.PutAsJsonAsync($"/api/v1/secrets/orders-{id}/db", new { value = "orders-pw" }, _ct);
        await admin.PutAsJsonAsync($"/api/v1/secrets/orders-{id}x/db", new { value = "lookalike" }, _ct);
        await admin.PutAsJsonAsync($"/api/v1/secrets/billing-{id}/db", new { value = "billing-pw" }, _ct);
        var (service, clientId) = await factory.ServiceClientAsync(Api.UniqueName("svc"));
        var policy = await admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"client:{clientId}", pathPrefix = $"orders-{id}", capabilities = new[] { "read", "list" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, policy.StatusCode);

        var read = await (await service.GetAsync($"/api/v1/secrets/orders-{id}/db", _ct)).JsonAsync();
        Assert.Equal("orders-pw", read["value"]!.GetValue<string>());
        await (await service.GetAsync($"/api/v1/secrets/orders-{id}x/db", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await service.GetAsync($"/api/v1/secrets/billing-{id}/db", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await service.PutAsJsonAsync($"/api/v1/secrets/orders-{id}/db", new { value = "overwrite" }, _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        var listed = await (await service.GetAsync("/api/v1/secrets?prefix=", _ct)).JsonAsync();
        Assert.Equal([$"orders-{id}/db"], listed["paths"]!.AsArray().Select(p => p!.GetValue<string>()));

        var readAudit = await (await admin.GetAsync($"/api/v1/audit?action=secret.read&actor=client:{clientId}&outcome=success", _ct)).JsonAsync();
        var entry = readAudit["items"]!.AsArray().Single()!;
        Assert.Equal("1", entry["details"]!["version"]!.GetValue<string>());
        Assert.DoesNotContain("orders-pw", readAudit.ToJsonString(), StringComparison.Ordinal);

        // Role-based policies apply to every holder of the role.
        var role = Api.UniqueName("readers").ToLowerInvariant();
        await admin.PostAsJsonAsync("/api/v1/roles", new { name = role, permissions = Array.Empty<string>() }, _ct);
        await admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"role:{role}", pathPrefix = $"billing-{id}/", capabilities = new[] { "read" } }, _ct);
        var (person, _, _) = await factory.UserClientAsync(role);
        Assert.Equal(HttpStatusCode.OK, (await person.GetAsync($"/api/v1/secrets/billing-{id}/db", _ct)).StatusCode);
    }

    [Fact]
    public async Task ScopedApiKey_DoesNotInheritItsOwnersPersonalPolicies()
    {
        using var admin = await factory.AdminAsync();
        var path = NewPath("personal");
        await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "mine" }, _ct);
        var (person, userId, _) = await factory.UserClientAsync("user");
        await admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"user:{userId}", pathPrefix = path, capabilities = new[] { "read" } }, _ct);
        Assert.Equal(HttpStatusCode.OK, (await person.GetAsync($"/api/v1/secrets/{path}", _ct)).StatusCode);

        var key = (await (await person.PostAsJsonAsync("/api/v1/api-keys", new { name = "narrow", roles = new[] { "guest" } }, _ct)).JsonAsync())["key"]!.GetValue<string>();
        using var withKey = factory.WithApiKey(key);
        await (await withKey.GetAsync($"/api/v1/secrets/{path}", _ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task SwappedCiphertext_FailsAuthentication_AndIsNeverReturned()
    {
        using var admin = await factory.AdminAsync();
        var a = NewPath();
        var b = NewPath();
        await admin.PutAsJsonAsync($"/api/v1/secrets/{a}", new { value = "alpha-secret-value" }, _ct);
        await admin.PutAsJsonAsync($"/api/v1/secrets/{b}", new { value = "bravo-secret-value" }, _ct);
        await using (var connection = await factory.Services.GetRequiredService<IDatabase>().OpenAsync(_ct))
        {
            var stolen = await connection.ExecuteScalarAsync<byte[]>("SELECT ciphertext FROM vault_secret_versions WHERE path = @a AND version = 1", new { a });
            await connection.ExecuteAsync("UPDATE vault_secret_versions SET ciphertext = @stolen WHERE path = @b AND version = 1", new { stolen, b });
        }

        var response = await admin.GetAsync($"/api/v1/secrets/{b}", _ct);
        await response.AssertProblemAsync(HttpStatusCode.InternalServerError);
        var body = await response.Content.ReadAsStringAsync(_ct);
        Assert.DoesNotContain("alpha-secret-value", body, StringComparison.Ordinal);
        Assert.DoesNotContain("bravo-secret-value", body, StringComparison.Ordinal);
        var audit = await (await admin.GetAsync($"/api/v1/audit?action=secret.read&target=secret:{b}&outcome=failure", _ct)).JsonAsync();
        Assert.Equal("integrity_check_failed", audit["items"]![0]!["details"]!["reason"]!.GetValue<string>());
        Assert.Equal("alpha-secret-value", (await (await admin.GetAsync($"/api/v1/secrets/{a}", _ct)).JsonAsync())["value"]!.GetValue<string>());

        // ... and raises the integrity alert.
        await factory.Services.GetRequiredService<Fundament.Alerts.AlertEvaluator>().EvaluateAsync(_ct);
        var alerts = (await (await admin.GetAsync("/api/v1/alerts?state=firing", _ct)).JsonAsync()).AsArray();
        Assert.Contains(alerts, x => x!["ruleId"]!.GetValue<string>() == "secret-integrity" && x["subject"]!.GetValue<string>() == $"secret:{b}");
    }

    [Fact]
    public async Task CanaryPlaintext_NeverReachesTheDatabaseFiles()
    {
        using var admin = await factory.AdminAsync();
        var canary = "canary-" + Guid.NewGuid().ToString("N");
        var path = NewPath();
        (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = canary }, _ct)).EnsureSuccessStatusCode();
        await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = new { nested = canary } }, _ct);
        Assert.Equal(canary, (await (await admin.GetAsync($"/api/v1/secrets/{path}?version=1", _ct)).JsonAsync())["value"]!.GetValue<string>());

        var files = await StorageFilesAsync();
        Assert.NotEmpty(files);
        var needle = Encoding.UTF8.GetBytes(canary);
        var scanned = 0L;
        foreach (var file in files)
        {
            byte[] bytes;
            try
            {
                await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var memory = new MemoryStream();
                await stream.CopyToAsync(memory, _ct);
                bytes = memory.ToArray();
            }
            catch (IOException)
            {
                continue;
            }
            scanned += bytes.Length;
            Assert.True(bytes.AsSpan().IndexOf(needle) < 0, $"the canary's plaintext is in {file}");
        }
        Assert.True(scanned > 0);
    }

    /// <summary>Every file the storage engine wrote the secret into (after flushing it there).</summary>
    protected abstract Task<IReadOnlyList<string>> StorageFilesAsync();

    [Fact]
    public async Task RotationDue_ListsOverdueSecrets_UntilANewVersionIsWritten()
    {
        using var admin = await factory.AdminAsync();
        var path = NewPath("rotating");
        await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "v1", rotateEvery = "1d" }, _ct);
        async Task<List<string>> DueAsync(HttpClient client) =>
            (await (await client.GetAsync("/api/v1/vault/rotation-due", _ct)).JsonAsync()).AsArray().Select(d => d!["path"]!.GetValue<string>()).ToList();

        Assert.DoesNotContain(path, await DueAsync(admin));
        factory.Time.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
        using var fresh = await factory.AdminAsync();
        Assert.Contains(path, await DueAsync(fresh));
        await fresh.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "v2" }, _ct);
        Assert.DoesNotContain(path, await DueAsync(fresh));
        var metadata = await (await fresh.GetAsync($"/api/v1/secret-metadata/{path}", _ct)).JsonAsync();
        Assert.Equal("1d", metadata["rotateEvery"]!.GetValue<string>());
    }

    [Fact]
    public async Task BadInput_Is400_AndChangesNothing()
    {
        using var admin = await factory.AdminAsync();
        await (await admin.PutAsJsonAsync("/api/v1/secrets/a/../b", new { value = "x" }, _ct)).Content.ReadAsStringAsync(_ct);
        await (await admin.PutAsJsonAsync("/api/v1/secrets/.hidden/x", new { value = "x" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PutAsJsonAsync($"/api/v1/secrets/{NewPath()}", new { }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PutAsJsonAsync($"/api/v1/secrets/{NewPath()}", new { value = "x", rotateEvery = "soon" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PutAsJsonAsync($"/api/v1/secrets/{NewPath()}", new { value = new string('x', 70_000) }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = "everyone", pathPrefix = "", capabilities = new[] { "read" } }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = "role:user", pathPrefix = "", capabilities = new[] { "sudo" } }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
    }
}

public sealed class SqliteSecretsApiTests(SqliteFundamentFactory factory) : SecretsApiTests(factory), IClassFixture<SqliteFundamentFactory>
{
    protected override Task<IReadOnlyList<string>> StorageFilesAsync() =>
        Task.FromResult<IReadOnlyList<string>>(Directory.GetFiles(factory.DataDir, "fundament.db*"));
}

public sealed class PostgresSecretsApiTests : SecretsApiTests, IClassFixture<PostgresFundamentFactory>
{
    public const string DataDirectoryVariable = "FUNDAMENT_TEST_POSTGRES_DATA";

    public PostgresSecretsApiTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");

    protected override async Task<IReadOnlyList<string>> StorageFilesAsync()
    {
        var dataDirectory = Environment.GetEnvironmentVariable(DataDirectoryVariable);
        Assert.False(string.IsNullOrEmpty(dataDirectory), $"set {DataDirectoryVariable} to the server's data directory to scan it");
        await using (var connection = new NpgsqlConnection(PostgresFundamentFactory.AdminConnectionString))
        {
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            // Push everything from shared buffers and the WAL into the data files before scanning.
            await using var checkpoint = new NpgsqlCommand("CHECKPOINT", connection);
            await checkpoint.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }
        return Directory.GetFiles(dataDirectory!, "*", SearchOption.AllDirectories);
    }
}
