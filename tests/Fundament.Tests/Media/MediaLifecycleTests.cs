using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Media;

/// <summary>Trash, restore, archive, legal hold, policies on a fake clock, access rules and webhooks.</summary>
public class MediaLifecycleTests : MediaTestBase
{
    protected virtual string ColdRoot => Path.Combine(Factory.DataDir, "media", "cold");

    protected virtual string HotRoot => Path.Combine(Factory.DataDir, "media", "hot");

    protected virtual bool LocalStores => true;

    private async Task<string> ReadyAsync(byte[] content, string name, string? tags = null, HttpClient? client = null)
    {
        var id = await UploadNewAsync(client ?? Admin, content, name, tags);
        await ProcessAsync();
        Assert.Equal("ready", State(await GetAsync(client ?? Admin, id)));
        return id;
    }

    [Fact]
    public async Task Delete_moves_to_the_trash_and_restore_brings_it_back_with_the_history_recorded()
    {
        var id = await ReadyAsync(Fixture("nikon-rio.jpg"), "rio.jpg");
        var trashed = await (await Admin.DeleteAsync($"/api/v1/media/{id}", Ct)).JsonAsync();
        Assert.Equal("trashed", State(trashed));
        Assert.NotNull(trashed["trashedAt"]);
        Assert.Empty((await Admin.GetFromJsonAsync<JsonNode>("/api/v1/media", Ct))!["items"]!.AsArray());
        Assert.Single((await Admin.GetFromJsonAsync<JsonNode>("/api/v1/media?state=trashed", Ct))!["items"]!.AsArray());
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync($"/api/v1/media/{id}/content", Ct)).StatusCode);

        var restored = await (await Admin.PostAsync($"/api/v1/media/{id}/restore", null, Ct)).JsonAsync();
        Assert.Equal("ready", State(restored));
        Assert.Equal(["uploaded", "processing", "ready", "trashed", "ready"], restored["history"]!.AsArray().Select(h => h!["to"]!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.Conflict, (await Admin.PostAsync($"/api/v1/media/{id}/restore", null, Ct)).StatusCode);

        var audit = await Admin.GetFromJsonAsync<JsonNode>($"/api/v1/audit?target=media:{id}", Ct);
        var actions = audit!["items"]!.AsArray().Select(e => e!["action"]!.GetValue<string>()).ToList();
        // Every transition is audited: upload, processing, ready, trash, restore.
        Assert.Contains("media.upload", actions);
        Assert.Contains("media.process", actions);
        Assert.Contains("media.ready", actions);
        Assert.Contains("media.trash", actions);
        Assert.Contains("media.restore", actions);
    }

    [Fact]
    public async Task Legal_hold_blocks_trash_and_archive_with_423_and_only_an_admin_sets_it()
    {
        var (user, _, _) = await Factory.UserClientAsync();
        var id = await ReadyAsync(Fixture("nikon-rio.jpg"), "rio.jpg", client: user);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PatchAsJsonAsync($"/api/v1/media/{id}", new { legalHold = true }, Ct)).StatusCode);
        var held = await (await Admin.PatchAsJsonAsync($"/api/v1/media/{id}", new { legalHold = true }, Ct)).JsonAsync();
        Assert.True(held["legalHold"]!.GetValue<bool>());

        var trash = await user.DeleteAsync($"/api/v1/media/{id}", Ct);
        Assert.Equal((HttpStatusCode)423, trash.StatusCode);
        Assert.Equal("application/problem+json", trash.Content.Headers.ContentType!.MediaType);
        Assert.Equal((HttpStatusCode)423, (await Admin.PostAsync($"/api/v1/media/{id}/archive", null, Ct)).StatusCode);
        Assert.Equal("ready", State(await GetAsync(user, id)));

        await Admin.PatchAsJsonAsync($"/api/v1/media/{id}", new { legalHold = false }, Ct);
        Assert.Equal(HttpStatusCode.OK, (await user.DeleteAsync($"/api/v1/media/{id}", Ct)).StatusCode);
    }

    [Fact]
    public async Task Policies_archive_then_trash_by_age_then_the_trash_is_purged_and_holds_are_respected()
    {
        var photo = await ReadyAsync(Fixture("canon-paris.jpg"), "paris.jpg", tags: "archive-me");
        var held = await ReadyAsync(Fixture("nikon-rio.jpg"), "rio.jpg", tags: "archive-me");
        var untagged = await ReadyAsync(Image("png"), "chart.png");
        await Admin.PatchAsJsonAsync($"/api/v1/media/{held}", new { legalHold = true }, Ct);
        var sha = (await GetAsync(Admin, photo))["sha256"]!.GetValue<string>();

        var created = await Admin.PostAsJsonAsync("/api/v1/media/policies", new { name = "old photos", type = "image", tag = "archive-me", archiveAfterDays = 10, trashAfterDays = 20 }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Admin.PostAsJsonAsync("/api/v1/media/policies", new { name = "bad", archiveAfterDays = 20, trashAfterDays = 10 }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Admin.PostAsJsonAsync("/api/v1/media/policies", new { name = "empty" }, Ct)).StatusCode);

        // Day 11: the dry run says what would happen and changes nothing.
        await AdvanceAsync(TimeSpan.FromDays(11));
        var dry = await (await Admin.PostAsync("/api/v1/media/policies/run?dryRun=true", null, Ct)).JsonAsync();
        Assert.Equal([(photo, "archive")], dry["actions"]!.AsArray().Select(a => (a!["assetId"]!.GetValue<string>(), a["action"]!.GetValue<string>())));
        Assert.Equal("ready", State(await GetAsync(Admin, photo)));

        var run = await (await Admin.PostAsync("/api/v1/media/policies/run?dryRun=false", null, Ct)).JsonAsync();
        Assert.Single(run["actions"]!.AsArray());
        // The run queues the move; a worker copies the original to the cold store.
        Assert.Equal("ready", State(await GetAsync(Admin, photo)));
        await ProcessAsync();
        var archived = await GetAsync(Admin, photo);
        Assert.Equal("archived", State(archived));
        Assert.Equal("cold", archived["tier"]!.GetValue<string>());
        if (LocalStores)
        {
            Assert.Single(Directory.EnumerateFiles(ColdRoot, sha, SearchOption.AllDirectories));
            Assert.Empty(Directory.EnumerateFiles(HotRoot, sha, SearchOption.AllDirectories));
        }
        // Archived content is still served (from the cold store), thumbnails too.
        Assert.Equal(Fixture("canon-paris.jpg"), await Admin.GetByteArrayAsync($"/api/v1/media/{photo}/content", Ct));
        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync($"/api/v1/media/{photo}/thumbnail", Ct)).StatusCode);
        Assert.Equal("ready", State(await GetAsync(Admin, held)));
        Assert.Equal("ready", State(await GetAsync(Admin, untagged)));

        // Day 21: trashed. Day 21 + 30: purged, content and derivatives gone.
        await AdvanceAsync(TimeSpan.FromDays(10));
        await Admin.PostAsync("/api/v1/media/policies/run?dryRun=false", null, Ct);
        Assert.Equal("trashed", State(await GetAsync(Admin, photo)));
        Assert.Equal("ready", State(await GetAsync(Admin, held)));
        await AdvanceAsync(TimeSpan.FromDays(31));
        var purge = await (await Admin.PostAsync("/api/v1/media/policies/run?dryRun=false", null, Ct)).JsonAsync();
        Assert.Contains(purge["actions"]!.AsArray(), a => a!["action"]!.GetValue<string>() == "purge" && a["assetId"]!.GetValue<string>() == photo);
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync($"/api/v1/media/{photo}", Ct)).StatusCode);
        if (LocalStores)
        {
            Assert.Empty(Directory.EnumerateFiles(ColdRoot, sha, SearchOption.AllDirectories));
            Assert.False(Directory.Exists(Path.Combine(HotRoot, "derivatives", photo)) && Directory.EnumerateFiles(Path.Combine(HotRoot, "derivatives", photo)).Any());
        }
        Assert.Equal("ready", State(await GetAsync(Admin, held)));
        var audit = await Admin.GetFromJsonAsync<JsonNode>($"/api/v1/audit?target=media:{photo}", Ct);
        Assert.Contains(audit!["items"]!.AsArray(), e => e!["action"]!.GetValue<string>() == "media.purge");
    }

    [Fact]
    public async Task Archive_and_restore_are_queued_for_a_worker_and_an_archived_asset_comes_back_to_the_hot_store()
    {
        var id = await ReadyAsync(Fixture("nikon-rio.jpg"), "rio.jpg");

        // 202: the asset is unchanged until a worker has moved the original; asking twice queues once.
        var accepted = await Admin.PostAsync($"/api/v1/media/{id}/archive", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        Assert.Equal($"/api/v1/media/{id}", accepted.Headers.Location!.ToString());
        Assert.Equal("ready", State(await accepted.JsonAsync()));
        Assert.Equal(HttpStatusCode.Accepted, (await Admin.PostAsync($"/api/v1/media/{id}/archive", null, Ct)).StatusCode);
        var queue = Factory.Services.GetRequiredService<Fundament.Jobs.JobStore>();
        Assert.Single(await queue.ListAsync("queued", "media.move", null, 10, Ct));
        await ProcessAsync();
        var archived = await GetAsync(Admin, id);
        Assert.Equal("archived", State(archived));
        Assert.Equal("cold", archived["tier"]!.GetValue<string>());
        Assert.Equal(Fixture("nikon-rio.jpg"), await Admin.GetByteArrayAsync($"/api/v1/media/{id}/content", Ct));
        Assert.Equal(HttpStatusCode.Conflict, (await Admin.PostAsync($"/api/v1/media/{id}/archive", null, Ct)).StatusCode);

        var restore = await Admin.PostAsync($"/api/v1/media/{id}/restore", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, restore.StatusCode);
        Assert.Equal("archived", State(await restore.JsonAsync()));
        await ProcessAsync();
        var restored = await GetAsync(Admin, id);
        Assert.Equal("ready", State(restored));
        Assert.Equal("hot", restored["tier"]!.GetValue<string>());
        Assert.Equal(Fixture("nikon-rio.jpg"), await Admin.GetByteArrayAsync($"/api/v1/media/{id}/content", Ct));
        if (LocalStores)
        {
            var sha = restored["sha256"]!.GetValue<string>();
            Assert.Single(Directory.EnumerateFiles(HotRoot, sha, SearchOption.AllDirectories));
            Assert.Empty(Directory.EnumerateFiles(ColdRoot, sha, SearchOption.AllDirectories));
        }
        var history = restored["history"]!.AsArray().Select(h => h!["to"]!.GetValue<string>()).ToList();
        Assert.Equal(["archived", "ready"], history[^2..]);

        // Archived again (a new request after the round trip), but trashed before a worker gets to it: the worker leaves it alone.
        Assert.Equal(HttpStatusCode.Accepted, (await Admin.PostAsync($"/api/v1/media/{id}/archive", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.DeleteAsync($"/api/v1/media/{id}", Ct)).StatusCode);
        await ProcessAsync();
        var trashed = await GetAsync(Admin, id);
        Assert.Equal("trashed", State(trashed));
        Assert.Equal("hot", trashed["tier"]!.GetValue<string>());
    }

    [Fact]
    public async Task Owners_see_their_own_admins_see_all_and_guests_read_only_what_is_shared()
    {
        var (alice, _, _) = await Factory.UserClientAsync();
        var (bob, _, _) = await Factory.UserClientAsync();
        var (guest, guestId, _) = await Factory.UserClientAsync("guest");
        var id = await ReadyAsync(Fixture("nikon-rio.jpg"), "rio.jpg", client: alice);

        Assert.Equal(HttpStatusCode.NotFound, (await bob.GetAsync($"/api/v1/media/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await bob.DeleteAsync($"/api/v1/media/{id}", Ct)).StatusCode);
        Assert.Empty((await bob.GetFromJsonAsync<JsonNode>("/api/v1/media", Ct))!["items"]!.AsArray());
        Assert.Single((await Admin.GetFromJsonAsync<JsonNode>("/api/v1/media", Ct))!["items"]!.AsArray());
        Assert.Equal(HttpStatusCode.NotFound, (await guest.GetAsync($"/api/v1/media/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await UploadAsync(guest, Fixture("canon-paris.jpg"), "x.jpg")).StatusCode);

        var shared = await alice.PatchAsJsonAsync($"/api/v1/media/{id}", new { sharedWith = new[] { guestId } }, Ct);
        Assert.Equal(HttpStatusCode.OK, shared.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await guest.GetAsync($"/api/v1/media/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await guest.GetAsync($"/api/v1/media/{id}/thumbnail", Ct)).StatusCode);
        Assert.Single((await guest.GetFromJsonAsync<JsonNode>("/api/v1/media", Ct))!["items"]!.AsArray());
        Assert.Equal(HttpStatusCode.Forbidden, (await guest.DeleteAsync($"/api/v1/media/{id}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await guest.PatchAsJsonAsync($"/api/v1/media/{id}", new { title = "mine now" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await alice.GetAsync("/api/v1/media/policies", Ct)).StatusCode);

        var stats = await alice.GetFromJsonAsync<JsonNode>("/api/v1/media/stats", Ct);
        Assert.Equal(1, stats!["totalCount"]!.GetValue<long>());
    }

    [Fact]
    public async Task Webhooks_get_signed_durable_deliveries_for_their_owners_events()
    {
        var (alice, _, _) = await Factory.UserClientAsync();
        var (bob, _, _) = await Factory.UserClientAsync();
        var hook = await (await alice.PostAsJsonAsync("/api/v1/webhooks", new { url = "https://hooks.example.test/media", events = new[] { "media.ready", "media.trashed" } }, Ct)).JsonAsync();
        Assert.True(hook["secret"]!.GetValue<string>().Length >= 32);
        var hookId = hook["id"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.BadRequest, (await alice.PostAsJsonAsync("/api/v1/webhooks", new { url = "ftp://x", events = new[] { "media.ready" } }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await alice.PostAsJsonAsync("/api/v1/webhooks", new { url = "https://x.test", events = new[] { "media.exploded" } }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await alice.PostAsJsonAsync("/api/v1/webhooks", new { url = "https://x.test", events = new[] { "media.ready" }, allOwners = true }, Ct)).StatusCode);

        var mine = await ReadyAsync(Fixture("nikon-rio.jpg"), "rio.jpg", client: alice);
        await ReadyAsync(Fixture("canon-paris.jpg"), "paris.jpg", client: bob);
        await alice.DeleteAsync($"/api/v1/media/{mine}", Ct);
        await Factory.Services.RelayEventsAsync(Ct);

        var deliveries = await alice.GetFromJsonAsync<JsonArray>($"/api/v1/webhooks/{hookId}/deliveries", Ct);
        Assert.Equal(["media.ready", "media.trashed"], deliveries!.Select(d => d!["event"]!.GetValue<string>()).Order());
        Assert.All(deliveries!, d => Assert.Equal("pending", d!["state"]!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.NotFound, (await bob.GetAsync($"/api/v1/webhooks/{hookId}/deliveries", Ct)).StatusCode);

        // A process that dies between committing a transition and queueing its event: the event was
        // stored with the transition, and the next sweep sends it.
        var store = (Fundament.Media.MediaStore)Factory.Services.GetService(typeof(Fundament.Media.MediaStore))!;
        Assert.True(await store.TransitionAsync(mine, ["trashed"], "ready", "user:crashed", "restored, then the process died", Ct, new Fundament.Media.AssetTransition { PendingEvent = "media.ready" }));
        var service = (Fundament.Media.MediaService)Factory.Services.GetService(typeof(Fundament.Media.MediaService))!;
        Assert.Equal(0, await service.PublishPendingAsync(TimeSpan.FromMinutes(1), Ct)); // too recent: the request may still be publishing it
        Factory.Time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(1, await service.PublishPendingAsync(TimeSpan.FromMinutes(1), Ct));
        Assert.Equal(0, await service.PublishPendingAsync(TimeSpan.FromMinutes(1), Ct)); // sent once
        await Factory.Services.RelayEventsAsync(Ct);
        var after = await alice.GetFromJsonAsync<JsonArray>($"/api/v1/webhooks/{hookId}/deliveries", Ct);
        Assert.Equal(2, after!.Count(d => d!["event"]!.GetValue<string>() == "media.ready"));
        Assert.Equal(HttpStatusCode.NoContent, (await alice.DeleteAsync($"/api/v1/webhooks/{hookId}", Ct)).StatusCode);
    }
}

/// <summary>The same lifecycle with both stores on a real S3-compatible server (one bucket each).</summary>
public sealed class S3MediaLifecycleTests : MediaLifecycleTests
{
    private Fundament.Media.Storage.S3StoreOptions _hot = null!;
    private Fundament.Media.Storage.S3StoreOptions _cold = null!;

    protected override bool LocalStores => false;

    public override async ValueTask InitializeAsync()
    {
        _hot = await TestS3.NewBucketAsync();
        _cold = await TestS3.NewBucketAsync();
        await base.InitializeAsync();
    }

    protected override IEnumerable<KeyValuePair<string, string>> Settings() =>
        [.. TestS3.Settings("Fundament:Media:Storage", _hot), .. TestS3.Settings("Fundament:Media:ColdStorage", _cold)];
}

/// <summary>The same lifecycle with the queue and the media tables on PostgreSQL.</summary>
public sealed class PostgresMediaLifecycleTests : MediaLifecycleTests
{
    public override ValueTask InitializeAsync()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"{PostgresFundamentFactory.Variable} is not set");
        return base.InitializeAsync();
    }

    protected override FundamentFactory CreateFactory(IEnumerable<KeyValuePair<string, string>> settings) => new PostgresFundamentFactory { Extra = settings };
}
