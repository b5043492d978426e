using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Media;

/// <summary>Multipart upload through metadata and thumbnails, dedupe, content serving, and refusals.</summary>
public sealed class MediaIngestTests : MediaTestBase
{
    [Fact]
    public async Task A_camera_jpeg_becomes_ready_with_its_metadata_and_oriented_thumbnails()
    {
        var id = await UploadNewAsync(Admin, Fixture("canon-paris.jpg"), "IMG_0001.JPG", tags: "Paris, trip", title: "Eiffel tower");
        var uploaded = await GetAsync(Admin, id);
        Assert.Equal("uploaded", State(uploaded));
        Assert.Equal("image", uploaded["type"]!.GetValue<string>());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Fixture("canon-paris.jpg"))), uploaded["sha256"]!.GetValue<string>());
        Assert.Equal(["paris", "trip"], uploaded["tags"]!.AsArray().Select(t => t!.GetValue<string>()));

        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.Equal("ready", State(asset));
        var m = asset["metadata"]!;
        Assert.Equal(1600, m["width"]!.GetValue<int>());
        Assert.Equal(1200, m["height"]!.GetValue<int>());
        Assert.Equal("Canon", m["cameraMake"]!.GetValue<string>());
        Assert.Equal("Canon EOS R5", m["cameraModel"]!.GetValue<string>());
        Assert.Equal("RF24-105mm F4 L IS USM", m["lens"]!.GetValue<string>());
        Assert.Equal("2024-06-01T14:30:05+02:00", m["takenAt"]!.GetValue<string>());
        Assert.Equal(6, m["orientation"]!.GetValue<int>());
        Assert.Equal(48.85837, m["gps"]!["latitude"]!.GetValue<double>(), 5);
        Assert.Equal(2.294481, m["gps"]!["longitude"]!.GetValue<double>(), 5);
        Assert.Equal("1/250", m["exposureTime"]!.GetValue<string>());
        Assert.Equal(200, m["iso"]!.GetValue<int>());
        Assert.Equal("Canon", m["raw"]!["Exif IFD0:Make"]!.GetValue<string>());
        Assert.Equal("Eiffel tower", m["raw"]!["XMP:dc:title[1]"]!.GetValue<string>());
        Assert.Equal("paris", m["raw"]!["IPTC:Keywords"]!.GetValue<string>());
        Assert.Equal(["uploaded", "processing", "ready"], asset["history"]!.AsArray().Select(h => h!["to"]!.GetValue<string>()));

        // Orientation 6 (rotate 90°): the 1600×1200 sensor image is shown 1200×1600.
        var large = asset["derivatives"]!.AsArray().Single(d => d!["name"]!.GetValue<string>() == "thumb-large")!;
        Assert.Equal(960, large["width"]!.GetValue<int>());
        Assert.Equal(1280, large["height"]!.GetValue<int>());
        var small = await Admin.GetAsync($"/api/v1/media/{id}/thumbnail?size=small", Ct);
        Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        Assert.Equal("image/webp", small.Content.Headers.ContentType!.MediaType);
        using var thumb = NetVips.Image.NewFromBuffer(await small.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal((192, 256), (thumb.Width, thumb.Height));
        Assert.Equal(HttpStatusCode.OK, (await Admin.GetAsync($"/api/v1/media/{id}/thumbnail?size=large", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Admin.GetAsync($"/api/v1/media/{id}/thumbnail?size=huge", Ct)).StatusCode);
    }

    [Fact]
    public async Task Camera_metadata_matches_exiftool()
    {
        Assert.SkipUnless(Tool("exiftool"), "exiftool is not installed");
        foreach (var name in new[] { "canon-paris.jpg", "nikon-rio.jpg" })
        {
            var id = await UploadNewAsync(Admin, Fixture(name), name);
            await ProcessAsync();
            var ours = (await GetAsync(Admin, id))["metadata"]!;
            var start = new ProcessStartInfo("exiftool") { RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in new[] { "-json", "-n", "-Make", "-Model", "-DateTimeOriginal", "-OffsetTimeOriginal", "-GPSLatitude", "-GPSLongitude", "-Orientation", FixturePath(name) })
            {
                start.ArgumentList.Add(a);
            }
            using var process = Process.Start(start)!;
            var theirs = JsonNode.Parse(await process.StandardOutput.ReadToEndAsync(Ct))![0]!;
            await process.WaitForExitAsync(Ct);
            Assert.Equal(theirs["Make"]!.ToString(), ours["cameraMake"]!.GetValue<string>());
            Assert.Equal(theirs["Model"]!.ToString(), ours["cameraModel"]!.GetValue<string>());
            var taken = DateTime.ParseExact(theirs["DateTimeOriginal"]!.ToString(), "yyyy:MM:dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture).ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)
                + (theirs["OffsetTimeOriginal"]?.ToString() ?? "");
            Assert.Equal(taken, ours["takenAt"]!.GetValue<string>());
            Assert.Equal(theirs["GPSLatitude"]!.GetValue<double>(), ours["gps"]!["latitude"]!.GetValue<double>(), 6);
            Assert.Equal(theirs["GPSLongitude"]!.GetValue<double>(), ours["gps"]!["longitude"]!.GetValue<double>(), 6);
            Assert.Equal(theirs["Orientation"]!.GetValue<int>(), ours["orientation"]!.GetValue<int>());
        }
    }

    [Fact]
    public async Task The_same_content_again_returns_the_existing_asset_and_stores_one_copy()
    {
        var content = Fixture("nikon-rio.jpg");
        var id = await UploadNewAsync(Admin, content, "a.jpg");
        var again = await UploadAsync(Admin, content, "renamed.jpg", tags: "other");
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(id, (await again.JsonAsync())["id"]!.GetValue<string>());

        // Another user with the same bytes gets an asset of their own, but the store still holds one copy.
        var (user, _, _) = await Factory.UserClientAsync();
        var theirs = await UploadNewAsync(user, content, "mine.jpg");
        Assert.NotEqual(id, theirs);
        var sha = Convert.ToHexStringLower(SHA256.HashData(content));
        var copies = Directory.EnumerateFiles(Path.Combine(Factory.DataDir, "media", "hot"), sha, SearchOption.AllDirectories).ToList();
        Assert.Single(copies);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Factory.DataDir, "media", "uploads", "staging")));
    }

    [Theory]
    [InlineData("png", "image/png")]
    [InlineData("webp", "image/webp")]
    [InlineData("gif", "image/gif")]
    [InlineData("tif", "image/tiff")]
    [InlineData("avif", "image/avif")]
    public async Task Png_webp_gif_tiff_and_avif_are_recognised_by_content_and_processed(string format, string mime)
    {
        // The name claims something else: the type comes from the bytes.
        var id = await UploadNewAsync(Admin, Image(format), "holiday.jpg");
        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.Equal(mime, asset["mime"]!.GetValue<string>());
        Assert.Equal("ready", State(asset));
        Assert.Equal(800, asset["metadata"]!["width"]!.GetValue<int>());
        Assert.Equal(2, asset["derivatives"]!.AsArray().Count);
    }

    public static TheoryData<string, byte[]> UnsupportedContent => new()
    {
        { "page.html", Encoding.UTF8.GetBytes("<!DOCTYPE html><html><script>alert(1)</script></html>") },
        { "logo.svg", Encoding.UTF8.GetBytes("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>") },
        { "photo.jpg", [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00] },
        { "run.exe", [0x4D, 0x5A, 0x90, 0x00, 0x03, 0x00, 0x00, 0x00] },
    };

    [Theory]
    [MemberData(nameof(UnsupportedContent))]
    public async Task Unsupported_content_is_refused_with_415_whatever_its_name_and_nothing_is_kept(string name, byte[] content)
    {
        var response = await UploadAsync(Admin, content, name);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        var list = await Admin.GetFromJsonAsync<JsonNode>("/api/v1/media", Ct);
        Assert.Empty(list!["items"]!.AsArray());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Factory.DataDir, "media", "uploads", "staging")));
    }

    [Fact]
    public async Task An_upload_over_the_limit_is_refused_with_413_and_nothing_is_kept()
    {
        var big = new byte[MaxUpload + 1];
        Fixture("canon-paris.jpg").CopyTo(big, 0);
        var response = await UploadAsync(Admin, big, "huge.jpg");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Empty((await Admin.GetFromJsonAsync<JsonNode>("/api/v1/media", Ct))!["items"]!.AsArray());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Factory.DataDir, "media", "uploads", "staging")));
    }

    [Fact]
    public async Task Malformed_requests_get_problem_details()
    {
        // Not multipart at all: the request's own type is unsupported.
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await Admin.PostAsync("/api/v1/media", new StringContent("{}", Encoding.UTF8, "application/json"), Ct)).StatusCode);
        using (var noFile = new MultipartFormDataContent { { new StringContent("x"), "title" } })
        {
            Assert.Equal(HttpStatusCode.BadRequest, (await Admin.PostAsync("/api/v1/media", noFile, Ct)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.BadRequest, (await UploadAsync(Admin, [], "empty.jpg")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await UploadAsync(Admin, Fixture("nikon-rio.jpg"), "x.jpg", tags: new string('t', 65))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await UploadAsync(Admin, Fixture("nikon-rio.jpg"), "x.jpg", title: new string('t', 201))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Admin.GetAsync("/api/v1/media?state=melted", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Admin.GetAsync("/api/v1/media?type=spreadsheet", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Admin.GetAsync("/api/v1/media/does-not-exist", Ct)).StatusCode);
        Assert.Empty((await Admin.GetFromJsonAsync<JsonNode>("/api/v1/media", Ct))!["items"]!.AsArray());
        using var anonymous = Factory.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await UploadAsync(anonymous, Fixture("nikon-rio.jpg"), "x.jpg")).StatusCode);
    }

    [Fact]
    public async Task A_hostile_file_name_is_kept_only_as_a_clean_display_name()
    {
        var id = await UploadNewAsync(Admin, Fixture("nikon-rio.jpg"), "../../etc/\u0000pass\u202Ewd.jpg");
        var asset = await GetAsync(Admin, id);
        Assert.Equal("passwd.jpg", asset["filename"]!.GetValue<string>());
        Assert.False(File.Exists(Path.Combine(Factory.DataDir, "etc", "passwd.jpg")));
    }

    [Fact]
    public async Task Content_is_served_with_etag_ranges_and_headers_that_stop_sniffing()
    {
        var content = Fixture("nikon-rio.jpg");
        var id = await UploadNewAsync(Admin, content, "rio.jpg");
        var whole = await Admin.GetAsync($"/api/v1/media/{id}/content", Ct);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.Equal(content, await whole.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal("image/jpeg", whole.Content.Headers.ContentType!.MediaType);
        Assert.Equal("nosniff", whole.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Contains("sandbox", whole.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        var etag = whole.Headers.ETag!;

        using var ranged = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/media/{id}/content");
        ranged.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(100, 199);
        var part = await Admin.SendAsync(ranged, Ct);
        Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
        Assert.Equal(content[100..200], await part.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal($"bytes 100-199/{content.Length}", part.Content.Headers.ContentRange!.ToString());

        using var suffix = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/media/{id}/content");
        suffix.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(null, 10);
        Assert.Equal(content[^10..], await (await Admin.SendAsync(suffix, Ct)).Content.ReadAsByteArrayAsync(Ct));

        using var beyond = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/media/{id}/content");
        beyond.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(content.Length + 10, null);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, (await Admin.SendAsync(beyond, Ct)).StatusCode);

        using var conditional = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/media/{id}/content");
        conditional.Headers.IfNoneMatch.Add(etag);
        Assert.Equal(HttpStatusCode.NotModified, (await Admin.SendAsync(conditional, Ct)).StatusCode);
    }

    [Fact]
    public async Task Listing_filters_by_type_tag_camera_text_and_taken_time_with_a_cursor()
    {
        var paris = await UploadNewAsync(Admin, Fixture("canon-paris.jpg"), "paris.jpg", tags: "travel,france", title: "Eiffel at noon");
        var rio = await UploadNewAsync(Admin, Fixture("nikon-rio.jpg"), "rio.jpg", tags: "travel,brazil", title: "Christ the Redeemer");
        var png = await UploadNewAsync(Admin, Image("png"), "chart.png", tags: "work");
        await ProcessAsync();

        async Task<List<string>> IdsAsync(string query) =>
            (await Admin.GetFromJsonAsync<JsonNode>("/api/v1/media" + query, Ct))!["items"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()).ToList();

        Assert.Equal([png, rio, paris], await IdsAsync(""));
        Assert.Equal([rio, paris], await IdsAsync("?tag=travel"));
        Assert.Equal([rio], await IdsAsync("?camera=nikon"));
        Assert.Equal([paris], await IdsAsync("?q=eiffel"));
        Assert.Equal([paris], await IdsAsync("?q=rf24-105")); // the lens: text search covers metadata and raw tags too
        Assert.Equal([paris], await IdsAsync("?takenFrom=2024-01-01T00:00:00Z&takenTo=2025-01-01T00:00:00Z"));
        Assert.Equal([rio, paris], await IdsAsync("?type=image&state=ready&takenFrom=2020-01-01T00:00:00Z"));

        var first = (await Admin.GetFromJsonAsync<JsonNode>("/api/v1/media?limit=2", Ct))!;
        Assert.Equal(2, first["items"]!.AsArray().Count);
        var next = first["next"]!.GetValue<string>();
        Assert.Equal([paris], await IdsAsync($"?limit=2&after={next}"));
    }
}
