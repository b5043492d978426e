using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Fundament.Core.Storage;
using Fundament.Media.Uploads;
using Fundament.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Media;

/// <summary>
/// tus 1.0 resumable uploads: the protocol's rules, interruption and resume, and the reference
/// client; with the bytes in a part file on this node (<c>UploadParts=local</c>).
/// </summary>
public class TusUploadTests : MediaTestBase
{
    private const string Endpoint = "/api/v1/media/uploads";

    /// <summary>Whether chunks go to the hot store (<c>UploadParts=store</c>) instead of a local part file.</summary>
    protected virtual bool StoreParts => false;

    private string UploadFolder => Path.Combine(Factory.DataDir, "media", "uploads");

    protected override IEnumerable<KeyValuePair<string, string>> Settings() => [new("Fundament:Media:UploadParts", StoreParts ? "store" : "local")];

    private readonly int _port = Gateway.GatewayTestBase.FreePort();

    /// <summary>A real listening server: an interrupted upload must be a real broken TCP connection.</summary>
    protected override FundamentFactory CreateFactory(IEnumerable<KeyValuePair<string, string>> settings)
    {
        var factory = new ConfiguredFundamentFactory(settings);
        factory.UseKestrel(options => options.Listen(IPAddress.Loopback, _port));
        return factory;
    }

    /// <summary>Sends the headers of a PATCH and <paramref name="sent"/> of its bytes, then drops the connection.</summary>
    private async Task PatchAndDropAsync(string location, long offset, byte[] body, int sent)
    {
        using var socket = new System.Net.Sockets.TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, _port, Ct);
        var stream = socket.GetStream();
        var head = $"PATCH {new Uri(location, UriKind.RelativeOrAbsolute).ToString().Replace($"http://127.0.0.1:{_port}", "", StringComparison.Ordinal)} HTTP/1.1\r\n"
            + $"Host: 127.0.0.1:{_port}\r\nAuthorization: {Admin.DefaultRequestHeaders.Authorization}\r\nTus-Resumable: 1.0.0\r\n"
            + $"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {body.Length}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), Ct);
        await stream.WriteAsync(body.AsMemory(0, sent), Ct);
        await stream.FlushAsync(Ct);
        // Wait until the server is writing those bytes (the part file, or the chunk's temp file, grows), so the drop happens mid-body, not before the request starts.
        var part = Path.Combine(UploadFolder, Guid.Parse(location.Split('/')[^1]).ToString("N") + ".part");
        bool Arrived() => StoreParts
            ? Directory.Exists(UploadFolder) && Directory.EnumerateFiles(UploadFolder, "*.chunk").Any(f => new FileInfo(f).Length >= sent)
            : new FileInfo(part).Length >= offset + sent;
        for (var i = 0; i < 200 && !Arrived(); i++)
        {
            await Task.Delay(25, Ct);
        }
        Assert.True(Arrived(), "the server never received the first bytes of the chunk");
        // The client goes away mid-body (its side of the connection closes before Content-Length bytes were sent).
        socket.Client.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        socket.Close();
    }

    private static string Meta(params (string Key, string Value)[] pairs) =>
        string.Join(",", pairs.Select(p => $"{p.Key} {Convert.ToBase64String(Encoding.UTF8.GetBytes(p.Value))}"));

    private async Task<HttpResponseMessage> CreateAsync(long length, string? metadata = null, bool tus = true)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Endpoint) { Content = new ByteArrayContent([]) };
        if (tus)
        {
            request.Headers.Add("Tus-Resumable", "1.0.0");
        }
        request.Headers.Add("Upload-Length", length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (metadata is not null)
        {
            request.Headers.Add("Upload-Metadata", metadata);
        }
        return await Admin.SendAsync(request, Ct);
    }

    private async Task<HttpResponseMessage> PatchAsync(string location, long offset, HttpContent content, string? checksum = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = content };
        request.Headers.Add("Tus-Resumable", "1.0.0");
        request.Headers.Add("Upload-Offset", offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (checksum is not null)
        {
            request.Headers.Add("Upload-Checksum", checksum);
        }
        if (content.Headers.ContentType is null)
        {
            content.Headers.ContentType = new MediaTypeHeaderValue("application/offset+octet-stream");
        }
        return await Admin.SendAsync(request, Ct);
    }

    private static ByteArrayContent Chunk(byte[] data) => new(data) { Headers = { ContentType = new MediaTypeHeaderValue("application/offset+octet-stream") } };

    private async Task<long> OffsetAsync(string location)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, location);
        request.Headers.Add("Tus-Resumable", "1.0.0");
        var response = await Admin.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl!.ToString());
        return long.Parse(response.Headers.GetValues("Upload-Offset").Single(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Options_announces_the_protocol_and_its_extensions()
    {
        using var anonymous = Factory.CreateClient();
        var response = await anonymous.SendAsync(new HttpRequestMessage(HttpMethod.Options, Endpoint), Ct);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("1.0.0", response.Headers.GetValues("Tus-Version").Single());
        Assert.Equal("creation,creation-with-upload,termination,checksum,expiration", response.Headers.GetValues("Tus-Extension").Single());
        Assert.Equal(MaxUpload.ToString(System.Globalization.CultureInfo.InvariantCulture), response.Headers.GetValues("Tus-Max-Size").Single());
        Assert.Contains("sha1", response.Headers.GetValues("Tus-Checksum-Algorithm").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_upload_interrupted_mid_chunk_keeps_what_arrived_resumes_and_becomes_a_ready_asset()
    {
        var content = Fixture("canon-paris.jpg");
        var created = await CreateAsync(content.Length, Meta(("filename", "paris.jpg"), ("title", "Tour Eiffel"), ("tags", "paris,tus")));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("1.0.0", created.Headers.GetValues("Tus-Resumable").Single());
        Assert.True(created.Headers.Contains("Upload-Expires"));
        var location = created.Headers.Location!.ToString();

        // First chunk, whole, with a checksum.
        var first = content[..10_000];
        var ok = await PatchAsync(location, 0, Chunk(first), "sha1 " + Convert.ToBase64String(SHA1.HashData(first)));
        Assert.Equal(HttpStatusCode.NoContent, ok.StatusCode);
        Assert.Equal("10000", ok.Headers.GetValues("Upload-Offset").Single());

        // The connection drops 5,000 bytes into the next chunk: what arrived is kept.
        await PatchAndDropAsync(location, 10_000, content[10_000..], sent: 5_000);
        // The server finishes its side of the broken request on its own schedule; wait for it to record the bytes.
        var offset = await OffsetAsync(location);
        for (var i = 0; i < 100 && offset != 15_000; i++)
        {
            await Task.Delay(50, Ct);
            offset = await OffsetAsync(location);
        }
        Assert.Equal(15_000, offset);

        // A wrong offset is refused; the right one completes the upload.
        Assert.Equal(HttpStatusCode.Conflict, (await PatchAsync(location, 0, Chunk(content[..10]))).StatusCode);
        var last = await PatchAsync(location, offset, Chunk(content[(int)offset..]));
        Assert.Equal(HttpStatusCode.NoContent, last.StatusCode);
        var id = last.Headers.GetValues("Media-Id").Single();

        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.Equal("ready", State(asset));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)), asset["sha256"]!.GetValue<string>());
        Assert.Equal("paris.jpg", asset["filename"]!.GetValue<string>());
        Assert.Equal("Tour Eiffel", asset["title"]!.GetValue<string>());
        Assert.Equal(["paris", "tus"], asset["tags"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal("Canon", asset["metadata"]!["cameraMake"]!.GetValue<string>());
        var upload = await Admin.GetFromJsonAsync<JsonNode>(location, Ct);
        Assert.Equal(id, upload!["assetId"]!.GetValue<string>());

        // The same bytes again through tus: the existing asset.
        var again = (await CreateAsync(content.Length)).Headers.Location!.ToString();
        Assert.Equal(id, (await PatchAsync(again, 0, Chunk(content))).Headers.GetValues("Media-Id").Single());
    }

    [Fact]
    public async Task A_chunk_that_fails_its_checksum_is_discarded_with_460()
    {
        var content = Fixture("nikon-rio.jpg");
        var location = (await CreateAsync(content.Length)).Headers.Location!.ToString();
        var bad = await PatchAsync(location, 0, Chunk(content[..1000]), "sha1 " + Convert.ToBase64String(SHA1.HashData(content[..999])));
        Assert.Equal((HttpStatusCode)460, bad.StatusCode);
        Assert.Equal(0, await OffsetAsync(location));
        Assert.Equal(HttpStatusCode.BadRequest, (await PatchAsync(location, 0, Chunk(content[..10]), "crc99 AAAA")).StatusCode);
    }

    [Fact]
    public async Task Protocol_violations_get_the_status_the_spec_names_and_change_nothing()
    {
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await CreateAsync(100, tus: false)).StatusCode);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await CreateAsync(MaxUpload + 1)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await CreateAsync(0)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await CreateAsync(100, "filename not-base64!")).StatusCode);
        var location = (await CreateAsync(100)).Headers.Location!.ToString();
        var wrongType = await PatchAsync(location, 0, new ByteArrayContent(new byte[10]) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } });
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, wrongType.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await PatchAsync(location, 0, Chunk(new byte[101]))).StatusCode);
        Assert.Equal(0, await OffsetAsync(location));

        // Someone else's upload does not exist for them.
        var (other, _, _) = await Factory.UserClientAsync();
        using var head = new HttpRequestMessage(HttpMethod.Head, location);
        head.Headers.Add("Tus-Resumable", "1.0.0");
        Assert.Equal(HttpStatusCode.NotFound, (await other.SendAsync(head, Ct)).StatusCode);
    }

    [Fact]
    public async Task Termination_deletes_the_upload_and_expired_uploads_are_gone()
    {
        var location = (await CreateAsync(1000)).Headers.Location!.ToString();
        await PatchAsync(location, 0, Chunk(new byte[100]));
        using var delete = new HttpRequestMessage(HttpMethod.Delete, location);
        delete.Headers.Add("Tus-Resumable", "1.0.0");
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.SendAsync(delete, Ct)).StatusCode);
        using var head = new HttpRequestMessage(HttpMethod.Head, location);
        head.Headers.Add("Tus-Resumable", "1.0.0");
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.SendAsync(head, Ct)).StatusCode);
        Assert.Empty(KeptBytes());

        var stale = (await CreateAsync(1000)).Headers.Location!.ToString();
        await PatchAsync(stale, 0, Chunk(new byte[100]));
        Assert.NotEmpty(KeptBytes());
        await AdvanceAsync(TimeSpan.FromHours(25)); // past the 24 h expiry
        using var late = new HttpRequestMessage(HttpMethod.Head, stale);
        late.Headers.Add("Tus-Resumable", "1.0.0");
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.SendAsync(late, Ct)).StatusCode);

        // The sweeper deletes the expired upload's bytes, and bytes no upload owns (left by a crash, or by another node's sweep).
        var orphan = Path.Combine(UploadFolder, Guid.NewGuid().ToString("N") + (StoreParts ? ".chunk" : ".part"));
        await File.WriteAllBytesAsync(orphan, new byte[10], Ct);
        File.SetLastWriteTimeUtc(orphan, DateTime.UtcNow.AddHours(-1));
        var uploads = Factory.Services.GetRequiredService<UploadStore>();
        Assert.Equal(1, await uploads.SweepExpiredAsync(Ct));
        Assert.Equal(1, await uploads.SweepOrphanPartsAsync(Ct));
        Assert.Empty(KeptBytes());
        Assert.False(File.Exists(orphan));
    }

    /// <summary>The upload's row as the server reads it (for tests that play a request's part through the internals).</summary>
    private async Task<UploadRow> UploadRowAsync(string location)
    {
        var uploadId = location.Split('/')[^1];
        string owner;
        await using (var connection = await Factory.Services.GetRequiredService<IDatabase>().OpenAsync(Ct))
        {
            owner = await connection.ExecuteScalarAsync<string>("SELECT owner FROM media_uploads WHERE id = @uploadId", new { uploadId }) ?? "";
        }
        return (await Factory.Services.GetRequiredService<UploadStore>().GetAsync(uploadId, owner, Ct))!;
    }

    /// <summary>What unfinished uploads hold: part files on this node, or chunk objects in the (local) hot store.</summary>
    private IEnumerable<string> KeptBytes()
    {
        var folder = StoreParts ? Path.Combine(Factory.DataDir, "media", "hot", "uploads") : UploadFolder;
        return Directory.Exists(folder) ? Directory.EnumerateFiles(folder, StoreParts ? "*" : "*.part", SearchOption.AllDirectories) : [];
    }

    [Fact]
    public async Task A_chunk_that_read_a_stale_offset_never_destroys_what_another_request_recorded()
    {
        var content = Fixture("nikon-rio.jpg");
        var location = (await CreateAsync(content.Length)).Headers.Location!.ToString();
        var uploads = Factory.Services.GetRequiredService<UploadStore>();
        var uploadId = location.Split('/')[^1];
        // Request B reads the upload at offset 0 ...
        var stale = await UploadRowAsync(location);
        // ... request A records 0 -> 10000 meanwhile ...
        Assert.Equal(HttpStatusCode.NoContent, (await PatchAsync(location, 0, Chunk(content[..10_000]))).StatusCode);
        // ... and B, going on from its stale offset the way PATCH does, is refused without touching A's bytes.
        try
        {
            await using var chunk = (await uploads.Parts.BeginAsync(stale, 0, ct => uploads.IsAtAsync(uploadId, 0, ct), Ct))!;
            await chunk.Body.WriteAsync(new byte[500], Ct);
            Assert.Null(await uploads.AdvanceAsync(uploadId, 0, 500, Ct, await chunk.PersistAsync(500, Ct)));
            await chunk.AbandonAsync(Ct);
        }
        catch (UploadMovedException)
        {
            // The local part file checks under its lock, before writing.
        }
        Assert.Equal(10_000, await OffsetAsync(location));
        var last = await PatchAsync(location, 10_000, Chunk(content[10_000..]));
        Assert.Equal(HttpStatusCode.NoContent, last.StatusCode);
        var asset = await GetAsync(Admin, last.Headers.GetValues("Media-Id").Single());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)), asset["sha256"]!.GetValue<string>());
        Assert.Empty(KeptBytes());
    }

    [Fact]
    public async Task An_upload_whose_last_chunk_was_recorded_by_a_process_that_died_is_finished_by_HEAD()
    {
        // The last chunk is kept and recorded, then the process dies before it turns the upload into an asset.
        var content = Fixture("nikon-rio.jpg");
        var location = (await CreateAsync(content.Length, Meta(("filename", "rio.jpg")))).Headers.Location!.ToString();
        var uploads = Factory.Services.GetRequiredService<UploadStore>();
        var upload = await UploadRowAsync(location);
        await using (var chunk = (await uploads.Parts.BeginAsync(upload, 0, _ => Task.FromResult(true), Ct))!)
        {
            await chunk.Body.WriteAsync(content, Ct);
            Assert.NotNull(await uploads.AdvanceAsync(upload.Id, 0, content.Length, Ct, await chunk.PersistAsync(content.Length, Ct)));
        }

        // While another request is finishing it, HEAD reports every byte here and no Media-Id yet,
        // and a PATCH that would complete it too is told to wait (423); neither changes anything.
        var claim = await uploads.TryClaimFinishAsync(upload.Id, Ct);
        Assert.NotNull(claim);
        Assert.Null(await uploads.TryClaimFinishAsync(upload.Id, Ct));
        using (var busy = new HttpRequestMessage(HttpMethod.Head, location))
        {
            busy.Headers.Add("Tus-Resumable", "1.0.0");
            var answer = await Admin.SendAsync(busy, Ct);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.Equal(content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), answer.Headers.GetValues("Upload-Offset").Single());
            Assert.False(answer.Headers.Contains("Media-Id"));
        }
        Assert.Equal((HttpStatusCode)423, (await PatchAsync(location, content.Length, Chunk([]))).StatusCode);
        // Only the holder gives the claim up.
        await uploads.ReleaseFinishAsync(upload.Id, "not-the-holder", Ct);
        Assert.Null(await uploads.TryClaimFinishAsync(upload.Id, Ct));
        await uploads.ReleaseFinishAsync(upload.Id, claim!, Ct);

        // The client comes back and asks where to resume: the upload is complete, so HEAD finishes it.
        using var head = new HttpRequestMessage(HttpMethod.Head, location);
        head.Headers.Add("Tus-Resumable", "1.0.0");
        var response = await Admin.SendAsync(head, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), response.Headers.GetValues("Upload-Offset").Single());
        var id = response.Headers.GetValues("Media-Id").Single();
        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.Equal("ready", State(asset));
        Assert.Equal("rio.jpg", asset["filename"]!.GetValue<string>());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)), asset["sha256"]!.GetValue<string>());
        Assert.Empty(KeptBytes());
    }

    /// <summary>
    /// tus-js-client (the client behind Uppy) against a real listening server: it uploads a file,
    /// is aborted after the first chunk, and a fresh client resumes from the server's offset.
    /// Needs Node and <c>tests/tus-client</c> installed (<c>FUNDAMENT_TEST_TUS_CLIENT</c>; CI sets it).
    /// </summary>
    [Fact]
    public async Task The_reference_tus_client_uploads_is_interrupted_and_resumes()
    {
        var clientDir = Environment.GetEnvironmentVariable("FUNDAMENT_TEST_TUS_CLIENT");
        Assert.SkipUnless(clientDir is { Length: > 0 } && Directory.Exists(Path.Combine(clientDir, "node_modules", "tus-js-client")), "FUNDAMENT_TEST_TUS_CLIENT does not point at an installed tests/tus-client");
        var port = Gateway.GatewayTestBase.FreePort();
        await using var factory = new ConfiguredFundamentFactory([new("Fundament:Jobs:WorkerEnabled", "false"), .. Settings()]);
        factory.UseKestrel(options => options.Listen(IPAddress.Loopback, port));
        factory.StartServer();
        using var anonymous = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var login = await (await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = FundamentFactory.AdminPassword }, Ct)).JsonAsync();
        var token = login["access_token"]!.GetValue<string>();

        // A file larger than four chunks of 64 KiB, so the abort happens mid-upload.
        var file = Path.Combine(Path.GetTempPath(), $"fundament-tus-{Guid.NewGuid():N}.png");
        await File.WriteAllBytesAsync(file, Image("png", 1600, 1200), Ct);
        try
        {
            var start = new ProcessStartInfo("node") { WorkingDirectory = clientDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "upload.mjs", $"http://127.0.0.1:{port}/api/v1/media/uploads", token, file, "Resumed", "tus,node" })
            {
                start.ArgumentList.Add(a);
            }
            using var node = Process.Start(start)!;
            var output = await node.StandardOutput.ReadToEndAsync(Ct);
            var errors = await node.StandardError.ReadToEndAsync(Ct);
            await node.WaitForExitAsync(Ct);
            Assert.True(node.ExitCode == 0, errors);
            var result = JsonNode.Parse(output)!;
            var size = new FileInfo(file).Length;
            Assert.InRange(result["pausedAt"]!.GetValue<long>(), 1, size - 1);
            Assert.Equal(result["pausedAt"]!.GetValue<long>(), result["resumedFrom"]!.GetValue<long>());
            var id = result["mediaId"]!.GetValue<string>();

            using var admin = new HttpClient { BaseAddress = anonymous.BaseAddress };
            admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var asset = await admin.GetFromJsonAsync<JsonNode>($"/api/v1/media/{id}", Ct);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(file, Ct))), asset!["sha256"]!.GetValue<string>());
            Assert.Equal("Resumed", asset["title"]!.GetValue<string>());
            var worker = (Fundament.Jobs.JobWorker)factory.Services.GetService(typeof(Fundament.Jobs.JobWorker))!;
            await worker.PassAsync(Ct);
            await worker.IdleAsync();
            Assert.Equal("ready", (await admin.GetFromJsonAsync<JsonNode>($"/api/v1/media/{id}", Ct))!["state"]!.GetValue<string>());
        }
        finally
        {
            File.Delete(file);
        }
    }
}

/// <summary>The same protocol with every chunk an object in the hot store (<c>UploadParts=store</c>).</summary>
public sealed class StoreTusUploadTests : TusUploadTests
{
    protected override bool StoreParts => true;
}

/// <summary>
/// Two <c>media</c> replicas behind a load balancer without sticky sessions, on PostgreSQL and S3
/// (<c>UploadParts=auto</c> picks the store): any replica takes any chunk of any upload.
/// </summary>
public sealed class TusReplicaTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static HttpRequestMessage Tus(HttpMethod method, string uri, byte[]? body = null, long? offset = null, long? length = null)
    {
        var request = new HttpRequestMessage(method, uri);
        request.Headers.Add("Tus-Resumable", "1.0.0");
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/offset+octet-stream") } };
        }
        else if (method == HttpMethod.Post)
        {
            request.Content = new ByteArrayContent([]);
        }
        if (offset is { } o)
        {
            request.Headers.Add("Upload-Offset", o.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        if (length is { } l)
        {
            request.Headers.Add("Upload-Length", l.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return request;
    }

    [Fact]
    public async Task Chunks_of_one_upload_go_to_either_replica_and_it_finishes_on_whichever_gets_the_last()
    {
        TestS3.Require();
        var hot = await TestS3.NewBucketAsync();
        var cold = await TestS3.NewBucketAsync();
        await using var replicas = await ReplicaPair.StartAsync(
        [
            new("Fundament:Jobs:WorkerEnabled", "false"),
            new("Fundament:Media:PolicyRunnerEnabled", "false"),
            .. TestS3.Settings("Fundament:Media:Storage", hot),
            .. TestS3.Settings("Fundament:Media:ColdStorage", cold),
        ]);
        using var a = await replicas.A.AdminAsync();
        using var b = await replicas.B.AdminAsync();
        var content = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Media", "Fixtures", "canon-paris.jpg"));

        var created = await a.SendAsync(Tus(HttpMethod.Post, "/api/v1/media/uploads", length: content.Length), _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var location = created.Headers.Location!.ToString();
        var third = content.Length / 3;

        Assert.Equal(HttpStatusCode.NoContent, (await a.SendAsync(Tus(HttpMethod.Patch, location, content[..third], offset: 0), _ct)).StatusCode);
        var head = await b.SendAsync(Tus(HttpMethod.Head, location), _ct);
        Assert.Equal(third.ToString(System.Globalization.CultureInfo.InvariantCulture), head.Headers.GetValues("Upload-Offset").Single());
        // A stale offset on the other replica is refused and changes nothing.
        Assert.Equal(HttpStatusCode.Conflict, (await b.SendAsync(Tus(HttpMethod.Patch, location, content[..third], offset: 0), _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await b.SendAsync(Tus(HttpMethod.Patch, location, content[third..(2 * third)], offset: third), _ct)).StatusCode);
        var last = await a.SendAsync(Tus(HttpMethod.Patch, location, content[(2 * third)..], offset: 2 * third), _ct);
        Assert.Equal(HttpStatusCode.NoContent, last.StatusCode);
        var id = last.Headers.GetValues("Media-Id").Single();

        var asset = await b.GetFromJsonAsync<JsonNode>($"/api/v1/media/{id}", _ct);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)), asset!["sha256"]!.GetValue<string>());
        var original = await b.GetByteArrayAsync($"/api/v1/media/{id}/content", _ct);
        Assert.Equal(content, original);

        // The chunk objects are gone once the upload is an asset.
        await using var connection = await replicas.A.Services.GetRequiredService<IDatabase>().OpenAsync(_ct);
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM media_upload_segments"));
        Assert.Equal("store", replicas.B.Services.GetRequiredService<IUploadParts>().Kind);
    }
}
