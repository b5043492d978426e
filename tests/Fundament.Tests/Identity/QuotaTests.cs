using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;
using Fundament.Tests.Media;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Identity;

/// <summary>
/// Per-user and per-role quotas: readable at /api/v1/me/quotas, adjustable by administrators
/// within the escalation rule, and going over answers 413 (bytes) or 429 (counts) with a problem
/// naming the quota, with nothing written. The job worker is off (MediaTestBase), so queued jobs stay queued.
/// </summary>
public class QuotaTests : MediaTestBase
{
    private async Task SetUserQuotaAsync(string userId, string quota, long? limit)
    {
        var response = await Admin.PutAsJsonAsync($"/api/v1/quotas/users/{userId}/{quota}", limit is null ? new { limit = (long?)null, unlimited = true } : new { limit, unlimited = false }, Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
    }

    private static async Task AssertQuotaProblemAsync(HttpResponseMessage response, HttpStatusCode status, string quota, long limit)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(body)!;
        Assert.Equal(quota, problem["quota"]!.GetValue<string>());
        Assert.Equal(limit, problem["limit"]!.GetValue<long>());
        Assert.Contains(quota, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    private async Task<JsonNode> MineAsync(HttpClient client, string quota) =>
        (await (await client.GetAsync("/api/v1/me/quotas", Ct)).JsonAsync()).AsArray().Single(q => q!["name"]!.GetValue<string>() == quota)!;

    private async Task<long> CountAsync(string sql, object parameters)
    {
        await using var connection = await Factory.Services.GetRequiredService<Fundament.Core.Storage.IDatabase>().OpenAsync(Ct);
        return await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection, sql, parameters);
    }

    [Fact]
    public async Task MeQuotas_ListsEveryQuota_WithDefaultsForUsers_AndAdminsUnlimited()
    {
        var (user, _, _) = await Factory.UserClientAsync("user");
        var mine = (await (await user.GetAsync("/api/v1/me/quotas", Ct)).JsonAsync()).AsArray();
        Assert.Equal(["apiKeys", "assets", "concurrentWatches", "pendingUploads", "queuedJobs", "storedBytes", "storedEvents", "webhookSubscriptions"],
            mine.Select(q => q!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        var bytes = mine.Single(q => q!["name"]!.GetValue<string>() == "storedBytes")!;
        Assert.Equal(10L << 30, bytes["limit"]!.GetValue<long>());
        Assert.Equal("default", bytes["source"]!.GetValue<string>());
        Assert.Equal(0, bytes["used"]!.GetValue<long>());

        var image = Image("png", 64, 64);
        await UploadNewAsync(user, image);
        Assert.Equal(image.Length, (await MineAsync(user, "storedBytes"))["used"]!.GetValue<long>());
        Assert.Equal(1, (await MineAsync(user, "assets"))["used"]!.GetValue<long>());
        Assert.Equal(1, (await MineAsync(user, "queuedJobs"))["used"]!.GetValue<long>());

        var admin = await MineAsync(Admin, "storedBytes");
        Assert.Null(admin["limit"]);
        Assert.Equal("role:admin", admin["source"]!.GetValue<string>());
    }

    [Fact]
    public async Task StoredBytes_OverTheQuota_Is413_AndNothingIsStored()
    {
        var (user, id, _) = await Factory.UserClientAsync("user");
        var small = Image("png", 32, 32);
        var large = Image("png", 400, 400);
        await SetUserQuotaAsync(id, "storedBytes", small.Length + 100);
        await UploadNewAsync(user, small);

        // Declared (Content-Length) past what is left: refused before the body is read.
        var refused = await UploadAsync(user, large);
        await AssertQuotaProblemAsync(refused, HttpStatusCode.RequestEntityTooLarge, "storedBytes", small.Length + 100);
        // Streamed without a length: refused once the staged bytes pass what is left.
        using var chunked = new MultipartFormDataContent { { new StreamContent(new MemoryStream(large)), "file", "big.png" } };
        chunked.Headers.ContentLength = null;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/media") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        await AssertQuotaProblemAsync(await user.SendAsync(request, Ct), HttpStatusCode.RequestEntityTooLarge, "storedBytes", small.Length + 100);

        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM media_assets WHERE owner = @owner", new { owner = "user:" + id }));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Factory.DataDir, "media", "uploads", "staging")));
        // The content of the refused upload never reached the store.
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(large));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Factory.DataDir, "media"), sha + "*", SearchOption.AllDirectories));

        // Raised by an administrator, the same upload goes through.
        await SetUserQuotaAsync(id, "storedBytes", null);
        await UploadNewAsync(user, large);
        Assert.Null((await MineAsync(user, "storedBytes"))["limit"]);
    }

    [Fact]
    public async Task AssetsAndQueuedJobs_AtTheLimit_Are429_BeforeTheBodyIsRead()
    {
        var (user, id, _) = await Factory.UserClientAsync("user");
        await SetUserQuotaAsync(id, "assets", 1);
        await UploadNewAsync(user, Image("png", 40, 40));
        await AssertQuotaProblemAsync(await UploadAsync(user, Image("png", 41, 41)), HttpStatusCode.TooManyRequests, "assets", 1);
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM media_assets WHERE owner = @owner", new { owner = "user:" + id }));

        await SetUserQuotaAsync(id, "assets", 100);
        await SetUserQuotaAsync(id, "queuedJobs", 1);
        // The first asset's processing job is still queued (no worker runs here).
        await AssertQuotaProblemAsync(await UploadAsync(user, Image("png", 42, 42)), HttpStatusCode.TooManyRequests, "queuedJobs", 1);
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM jobs_items WHERE owner = @owner", new { owner = "user:" + id }));
        // Once it ran, there is room again.
        await ProcessAsync();
        await UploadNewAsync(user, Image("png", 42, 42));
    }

    [Fact]
    public async Task Tus_ReservesItsLength_AndCountsPendingUploads()
    {
        var (user, id, _) = await Factory.UserClientAsync("user");
        await SetUserQuotaAsync(id, "pendingUploads", 1);
        await SetUserQuotaAsync(id, "storedBytes", 10_000);
        async Task<HttpResponseMessage> CreateAsync(long length)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/media/uploads") { Content = new ByteArrayContent([]) };
            request.Headers.Add("Tus-Resumable", "1.0.0");
            request.Headers.Add("Upload-Length", length.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return await user.SendAsync(request, Ct);
        }

        await AssertQuotaProblemAsync(await CreateAsync(10_001), HttpStatusCode.RequestEntityTooLarge, "storedBytes", 10_000);
        Assert.Equal(HttpStatusCode.Created, (await CreateAsync(6_000)).StatusCode);
        Assert.Equal(6_000, (await MineAsync(user, "storedBytes"))["used"]!.GetValue<long>());
        await AssertQuotaProblemAsync(await CreateAsync(100), HttpStatusCode.TooManyRequests, "pendingUploads", 1);
        await SetUserQuotaAsync(id, "pendingUploads", 5);
        // The reservation counts: 6,000 + 5,000 is over 10,000.
        await AssertQuotaProblemAsync(await CreateAsync(5_000), HttpStatusCode.RequestEntityTooLarge, "storedBytes", 10_000);
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM media_uploads WHERE owner = @owner", new { owner = "user:" + id }));
    }

    [Fact]
    public async Task Tus_FinishingOverTheAssetsQuota_Is429_KeepsTheBytes_AndFinishesOnceThereIsRoom()
    {
        var (user, id, _) = await Factory.UserClientAsync("user");
        await UploadNewAsync(user, Image("png", 50, 50));
        var content = Image("png", 60, 60);
        using var create = new HttpRequestMessage(HttpMethod.Post, "/api/v1/media/uploads") { Content = new ByteArrayContent([]) };
        create.Headers.Add("Tus-Resumable", "1.0.0");
        create.Headers.Add("Upload-Length", content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var created = await user.SendAsync(create, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var location = created.Headers.Location!.ToString();
        // Room for the upload when it started, none for the asset when it finishes.
        await SetUserQuotaAsync(id, "assets", 1);

        using var patch = new HttpRequestMessage(HttpMethod.Patch, location) { Content = new ByteArrayContent(content) };
        patch.Headers.Add("Tus-Resumable", "1.0.0");
        patch.Headers.Add("Upload-Offset", "0");
        patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/offset+octet-stream");
        await AssertQuotaProblemAsync(await user.SendAsync(patch, Ct), HttpStatusCode.TooManyRequests, "assets", 1);
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM media_assets WHERE owner = @owner", new { owner = "user:" + id }));
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Factory.DataDir, "media"), sha + "*", SearchOption.AllDirectories));

        // The bytes were acknowledged and stay: once there is room, HEAD finishes the upload.
        await SetUserQuotaAsync(id, "assets", 2);
        using var head = new HttpRequestMessage(HttpMethod.Head, location);
        head.Headers.Add("Tus-Resumable", "1.0.0");
        var finished = await user.SendAsync(head, Ct);
        Assert.Equal(HttpStatusCode.OK, finished.StatusCode);
        Assert.True(finished.Headers.Contains("Media-Id"));
        Assert.Equal(2, await CountAsync("SELECT COUNT(*) FROM media_assets WHERE owner = @owner", new { owner = "user:" + id }));
    }

    [Fact]
    public async Task ApiKeys_AtTheLimit_Are429_AndConcurrentCreationsCannotShareTheLastSlot()
    {
        var (user, id, _) = await Factory.UserClientAsync("user");
        await SetUserQuotaAsync(id, "apiKeys", 3);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => user.PostAsJsonAsync("/api/v1/api-keys", new { name = $"k{i}" }, Ct)));
        Assert.Equal(3, results.Count(r => r.StatusCode == HttpStatusCode.Created));
        foreach (var refused in results.Where(r => r.StatusCode != HttpStatusCode.Created))
        {
            await AssertQuotaProblemAsync(refused, HttpStatusCode.TooManyRequests, "apiKeys", 3);
        }
        var keys = (await (await user.GetAsync("/api/v1/api-keys", Ct)).JsonAsync()).AsArray();
        Assert.Equal(3, keys.Count);
        // A revoked key frees its slot.
        Assert.Equal(HttpStatusCode.NoContent, (await user.DeleteAsync($"/api/v1/api-keys/{keys[0]!["id"]!.GetValue<string>()}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await user.PostAsJsonAsync("/api/v1/api-keys", new { name = "again" }, Ct)).StatusCode);
    }

    [Fact]
    public async Task WebhookSubscriptions_FollowTheMostGenerousRole()
    {
        var role = Api.UniqueName("hooks");
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync("/api/v1/roles", new { name = role, permissions = new[] { "webhooks.own" } }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutAsJsonAsync($"/api/v1/quotas/roles/{role}/webhookSubscriptions", new { limit = 1 }, Ct)).StatusCode);
        var (limited, id, _) = await Factory.UserClientAsync(role);
        var hook = new { url = "https://hooks.example.com/x", events = new[] { "media.ready" } };
        Assert.Equal(HttpStatusCode.Created, (await limited.PostAsJsonAsync("/api/v1/webhooks", hook, Ct)).StatusCode);
        await AssertQuotaProblemAsync(await limited.PostAsJsonAsync("/api/v1/webhooks", hook, Ct), HttpStatusCode.TooManyRequests, "webhookSubscriptions", 1);
        Assert.Equal(1, await CountAsync("SELECT COUNT(*) FROM delivery_webhooks WHERE owner = @owner", new { owner = "user:" + id }));
        Assert.Equal($"role:{role}", (await MineAsync(limited, "webhookSubscriptions"))["source"]!.GetValue<string>());

        // With a second role whose limit is the default (25), the more generous one applies.
        var (both, _, _) = await Factory.UserClientAsync(role, "user");
        var source = await MineAsync(both, "webhookSubscriptions");
        Assert.Equal(25, source["limit"]!.GetValue<long>());
        Assert.Equal("default", source["source"]!.GetValue<string>());

        // Deleting the role drops its overrides: a new role of the same name starts from the defaults.
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.DeleteAsync($"/api/v1/roles/{role}", Ct)).StatusCode);
        Assert.Equal(0, await CountAsync("SELECT COUNT(*) FROM identity_quotas WHERE subject = @role", new { role }));
    }

    [Fact]
    public async Task ConcurrentWatches_PastTheLimit_Are429_AndASlotFreesWhenAWatchEnds()
    {
        var name = Api.UniqueName("watcher");
        var (service, clientId) = await Factory.ServiceClientAsync(name);
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutAsJsonAsync($"/api/v1/quotas/clients/{clientId}/concurrentWatches", new { limit = 1 }, Ct)).StatusCode);
        // An index far ahead: these watches wait until their deadline (the clock is fake, so: until cancelled).
        const string index = "1000000000";

        // Answers at once when refused; still open after a moment when it holds a slot.
        async Task<HttpStatusCode?> WatchBrieflyAsync(string path)
        {
            using var brief = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            brief.CancelAfter(TimeSpan.FromMilliseconds(500));
            try
            {
                var response = await service.GetAsync(path, brief.Token);
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    await AssertQuotaProblemAsync(response, HttpStatusCode.TooManyRequests, "concurrentWatches", 1);
                }
                return response.StatusCode;
            }
            catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
            {
                return null;
            }
        }

        using var cancelWatch = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        // This watch stays open and holds the only slot.
        var watching = service.GetAsync($"/api/v1/config/resolved?service={name}&index={index}&wait=5m", cancelWatch.Token);
        // Probe only once the first watch holds its slot.
        for (var i = 0; i < 200 && (await MineAsync(service, "concurrentWatches"))["used"]!.GetValue<long>() < 1; i++)
        {
            await Task.Delay(10, Ct);
        }
        Assert.Equal(1, (await MineAsync(service, "concurrentWatches"))["used"]!.GetValue<long>());
        Assert.Equal(HttpStatusCode.TooManyRequests, await WatchBrieflyAsync($"/api/v1/registry/services?index={index}&wait=5m"));
        Assert.False(watching.IsCompleted);
        // A plain read (no index, no wait) needs no slot.
        Assert.Equal(HttpStatusCode.OK, (await service.GetAsync("/api/v1/registry/services", Ct)).StatusCode);

        await cancelWatch.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watching);
        // The server ends the cancelled watch and frees its slot.
        for (var i = 0; i < 200 && (await MineAsync(service, "concurrentWatches"))["used"]!.GetValue<long>() > 0; i++)
        {
            await Task.Delay(10, Ct);
        }
        Assert.Equal(0, (await MineAsync(service, "concurrentWatches"))["used"]!.GetValue<long>());
        Assert.Null(await WatchBrieflyAsync($"/api/v1/registry/services?index={index}&wait=5m"));
    }

    [Fact]
    public async Task Overrides_FollowTheEscalationRule_AndBadInputIs400()
    {
        var quotaAdmin = Api.UniqueName("quota-admin");
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync("/api/v1/roles", new { name = quotaAdmin, permissions = new[] { "quotas.read", "quotas.write", "users.read" } }, Ct)).StatusCode);
        var (manager, _, _) = await Factory.UserClientAsync(quotaAdmin);
        var (_, userId, _) = await Factory.UserClientAsync("user");
        var adminId = (await (await Admin.GetAsync("/api/v1/me", Ct)).JsonAsync())["id"]!.GetValue<string>();

        // On a user who holds no more than the manager: yes.
        // (user holds apikeys.own etc., which the manager lacks: refused, naming them.)
        var refusedUser = await manager.PutAsJsonAsync($"/api/v1/quotas/users/{userId}/storedBytes", new { limit = 0 }, Ct);
        await refusedUser.AssertProblemAsync(HttpStatusCode.Forbidden);
        Assert.Contains("media.own", (await refusedUser.JsonAsync())["missingPermissions"]!.AsArray().Select(p => p!.GetValue<string>()));
        // Starving the administrator, or the admin role, is out of reach.
        await (await manager.PutAsJsonAsync($"/api/v1/quotas/users/{adminId}/storedBytes", new { limit = 0 }, Ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        await (await manager.PutAsJsonAsync("/api/v1/quotas/roles/admin/storedBytes", new { limit = 0 }, Ct)).AssertProblemAsync(HttpStatusCode.Forbidden);
        // A role it holds all permissions of (its own): allowed.
        Assert.Equal(HttpStatusCode.OK, (await manager.PutAsJsonAsync($"/api/v1/quotas/roles/{quotaAdmin}/apiKeys", new { limit = 2 }, Ct)).StatusCode);
        Assert.Equal(0, await CountAsync("SELECT COUNT(*) FROM identity_quotas WHERE subject = @s", new { s = "user:" + adminId }));

        await (await Admin.PutAsJsonAsync($"/api/v1/quotas/users/{userId}/diskSpace", new { limit = 1 }, Ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await Admin.PutAsJsonAsync($"/api/v1/quotas/users/{userId}/assets", new { limit = -1 }, Ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await Admin.PutAsJsonAsync($"/api/v1/quotas/users/{userId}/assets", new { limit = 5, unlimited = true }, Ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await Admin.PutAsJsonAsync($"/api/v1/quotas/users/{userId}/assets", new { }, Ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await Admin.PutAsJsonAsync("/api/v1/quotas/users/nobody/assets", new { limit = 5 }, Ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        Assert.Equal(0, await CountAsync("SELECT COUNT(*) FROM identity_quotas WHERE subject = @s", new { s = "user:" + userId }));

        // Overrides are listed, and the change is audited.
        var overview = await (await manager.GetAsync("/api/v1/quotas?scope=role", Ct)).JsonAsync();
        Assert.Contains(overview["overrides"]!.AsArray(), o => o!["subject"]!.GetValue<string>() == quotaAdmin && o["limit"]!.GetValue<long>() == 2);
        Assert.Equal(10L << 30, overview["defaults"]!["storedBytes"]!.GetValue<long>());
        var audit = (await (await Admin.GetAsync("/api/v1/audit?action=quota.", Ct)).JsonAsync())["items"]!.AsArray();
        Assert.Contains(audit, e => e!["target"]!.GetValue<string>() == $"role:{quotaAdmin}");
    }

    [Fact]
    public async Task MultipartShape_TooManyPartsOrTooMuchText_Is413_WhileStreaming()
    {
        var (user, id, _) = await Factory.UserClientAsync("user");
        using (var form = new MultipartFormDataContent())
        {
            for (var i = 0; i < 20; i++)
            {
                form.Add(new StringContent("x"), "extra" + i);
            }
            form.Add(new ByteArrayContent(Image("png", 30, 30)), "file", "a.png");
            var response = await user.PostAsync("/api/v1/media", form, Ct);
            await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge);
            Assert.Equal("multipartParts", (await response.JsonAsync())["limit"]!.GetValue<string>());
        }
        using (var form = new MultipartFormDataContent())
        {
            // Each field under the old per-field limit, together far over the budget.
            for (var i = 0; i < 8; i++)
            {
                form.Add(new StringContent(string.Join(",", Enumerable.Range(0, 400).Select(n => $"t{n}"))), "tags");
            }
            form.Add(new ByteArrayContent(Image("png", 31, 31)), "file", "b.png");
            var response = await user.PostAsync("/api/v1/media", form, Ct);
            await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge);
            var problem = await response.JsonAsync();
            Assert.Equal("multipartFieldChars", problem["limit"]!.GetValue<string>());
            Assert.Equal(8192, problem["max"]!.GetValue<long>());
        }
        Assert.Equal(0, await CountAsync("SELECT COUNT(*) FROM media_assets WHERE owner = @owner", new { owner = "user:" + id }));
        // The file part came last: it was never staged.
        var staging = Path.Combine(Factory.DataDir, "media", "uploads", "staging");
        Assert.True(!Directory.Exists(staging) || !Directory.EnumerateFiles(staging).Any());
    }
}

/// <summary>The same quotas on PostgreSQL, where concurrent checks serialize on an advisory lock.</summary>
public sealed class PostgresQuotaTests : QuotaTests
{
    public override ValueTask InitializeAsync()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"{PostgresFundamentFactory.Variable} is not set");
        return base.InitializeAsync();
    }

    protected override FundamentFactory CreateFactory(IEnumerable<KeyValuePair<string, string>> settings) => new PostgresFundamentFactory { Extra = settings };
}
