using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Fundament.Jobs;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Media;

/// <summary>Hostile files fail with a reason and the worker lives on; video, audio and PDF; a killed worker loses nothing.</summary>
public sealed class MediaProcessingTests : MediaTestBase
{
    [Fact]
    public async Task Corrupt_pixelless_bomb_and_disguised_files_fail_with_a_reason_and_the_worker_lives_on()
    {
        var good = Fixture("canon-paris.jpg");
        var corrupt = new byte[20_000];
        new Random(7).NextBytes(corrupt);
        corrupt[0] = 0xFF;
        corrupt[1] = 0xD8;
        corrupt[2] = 0xFF;
        // Cut 40 bytes into the pixel data: nothing of the picture decodes.
        var pixelless = good[..(IndexOf(good, [0xFF, 0xDA]) + 40)];
        var bomb = PngBomb(60_000, 60_000); // 3.6 gigapixels in a few bytes
        var gifHtml = Encoding.ASCII.GetBytes("GIF89a<html><body><script>alert(document.cookie)</script></body></html>");

        var ids = new Dictionary<string, string>
        {
            ["corrupt"] = await UploadNewAsync(Admin, corrupt, "corrupt.jpg"),
            ["pixelless"] = await UploadNewAsync(Admin, pixelless, "pixelless.jpg"),
            ["bomb"] = await UploadNewAsync(Admin, bomb, "bomb.png"),
            ["gif-html"] = await UploadNewAsync(Admin, gifHtml, "innocent.gif"),
        };
        await ProcessAsync();
        foreach (var (name, id) in ids)
        {
            var asset = await GetAsync(Admin, id);
            Assert.True(State(asset) == "failed", $"{name} is {State(asset)}");
            Assert.False(string.IsNullOrWhiteSpace(asset["failureReason"]?.GetValue<string>()), name);
            Assert.Empty(asset["derivatives"]!.AsArray());
            Assert.Equal("failed", asset["history"]!.AsArray().Last()!["to"]!.GetValue<string>());
        }
        Assert.Contains("pixels; the limit is", (await GetAsync(Admin, ids["bomb"]))["failureReason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("no pixel data before the file ends", (await GetAsync(Admin, ids["pixelless"]))["failureReason"]!.GetValue<string>(), StringComparison.Ordinal);

        // A bad file is a result, not an error: each job ran once and is done, nothing is retried.
        var finished = await Admin.GetFromJsonAsync<JsonArray>("/api/v1/jobs?type=media.process&state=succeeded", Ct);
        Assert.Equal(4, finished!.Count);
        Assert.All(finished, j => Assert.Equal(1, j!["attempts"]!.GetValue<int>()));

        // The same worker then processes a good file.
        var ok = await UploadNewAsync(Admin, good, "good.jpg");
        await ProcessAsync();
        Assert.Equal("ready", State(await GetAsync(Admin, ok)));

        var stats = await Admin.GetFromJsonAsync<JsonNode>("/api/v1/media/stats", Ct);
        Assert.Equal(5, stats!["totalCount"]!.GetValue<long>());
        Assert.Equal(0.8, stats["failureRate"]!.GetValue<double>(), 3);
        Assert.NotNull(stats["processingP95Ms"]);
    }

    [Fact]
    public async Task A_photo_whose_data_ends_early_is_ready_with_a_warning_and_a_failed_one_keeps_its_metadata()
    {
        var good = Fixture("canon-paris.jpg");
        // What a phone that lost power leaves: the first 60% of the file. Browsers and vipsthumbnail show it, grey below.
        var cut = await UploadNewAsync(Admin, good[..(good.Length * 6 / 10)], "cut.jpg");
        var pixelless = await UploadNewAsync(Admin, good[..(IndexOf(good, [0xFF, 0xDA]) + 40)], "pixelless.jpg");
        await ProcessAsync();

        var asset = await GetAsync(Admin, cut);
        Assert.Equal("ready", State(asset));
        var warning = Assert.Single(asset["metadata"]!["warnings"]!.AsArray())!.GetValue<string>();
        Assert.Contains("the image data ends early", warning, StringComparison.Ordinal);
        Assert.Contains("the rest is grey", warning, StringComparison.Ordinal);
        Assert.Equal("Canon", asset["metadata"]!["cameraMake"]!.GetValue<string>());
        Assert.Contains(asset["derivatives"]!.AsArray(), d => d!["name"]!.GetValue<string>() == "thumb-large");
        using (var thumb = NetVips.Image.NewFromBuffer(await Admin.GetByteArrayAsync($"/api/v1/media/{cut}/derivatives/thumb-large", Ct)))
        {
            Assert.True(thumb.Width > 0);
        }

        // An intact file carries no warning.
        var intact = await UploadNewAsync(Admin, good, "intact.jpg");
        await ProcessAsync();
        Assert.Null((await GetAsync(Admin, intact))["metadata"]!["warnings"]);

        // Nothing of the picture decodes: failed, and what the file says about itself is still there.
        var failed = await GetAsync(Admin, pixelless);
        Assert.Equal("failed", State(failed));
        Assert.Equal("Canon", failed["metadata"]!["cameraMake"]!.GetValue<string>());
        Assert.Equal("2024-06-01T14:30:05+02:00", failed["metadata"]!["takenAt"]!.GetValue<string>());
        Assert.NotNull(failed["metadata"]!["gps"]);
        Assert.True(failed["metadata"]!["width"]!.GetValue<int>() > 0, "the header, which decodes, gives the size");
    }

    [Fact]
    public async Task TakenAt_falls_back_from_DateTimeOriginal_to_CreateDate_ModifyDate_and_XMP_and_says_which_it_used()
    {
        var source = FixturePath("canon-paris.jpg");
        var variants = new (string Name, string ExiftoolTag, string? OffsetTag, string[] Edits)[]
        {
            ("original", "DateTimeOriginal", "OffsetTimeOriginal", []),
            ("CreateDate", "CreateDate", "OffsetTimeDigitized", ["-DateTimeOriginal=", "-OffsetTimeOriginal=", "-CreateDate=2022:03:04 05:06:07", "-OffsetTimeDigitized=-05:00"]),
            ("ModifyDate", "ModifyDate", "OffsetTime", ["-DateTimeOriginal=", "-OffsetTimeOriginal=", "-ModifyDate=2021:01:02 03:04:05"]),
            ("XMP:CreateDate", "XMP-xmp:CreateDate", null, ["-EXIF:all=", "-XMP-xmp:CreateDate=2020:07:08 09:10:11+01:00"]),
            ("none", "DateTimeOriginal", null, ["-EXIF:all="]),
        };
        foreach (var (name, tag, offsetTag, edits) in variants)
        {
            var file = await MakeWithAsync("exiftool", "jpg", [.. edits, "-o", "{out}", source]);
            var id = await UploadNewAsync(Admin, file, name + ".jpg");
            await ProcessAsync();
            var ours = (await GetAsync(Admin, id))["metadata"]!;

            // What exiftool reads from the same bytes.
            var path = Path.Combine(Path.GetTempPath(), $"fundament-{Guid.NewGuid():N}.jpg");
            await File.WriteAllBytesAsync(path, file, Ct);
            JsonNode theirs;
            try
            {
                var start = new System.Diagnostics.ProcessStartInfo("exiftool") { RedirectStandardOutput = true, UseShellExecute = false };
                foreach (var a in new[] { "-json", "-" + tag, "-" + (offsetTag ?? "OffsetTime"), path })
                {
                    start.ArgumentList.Add(a);
                }
                using var process = System.Diagnostics.Process.Start(start)!;
                theirs = JsonNode.Parse(await process.StandardOutput.ReadToEndAsync(Ct))![0]!;
                await process.WaitForExitAsync(Ct);
            }
            finally
            {
                File.Delete(path);
            }
            var value = theirs[tag.Split(':')[^1]]?.ToString();
            if (name == "none")
            {
                Assert.Null(value);
                Assert.Null(ours["takenAt"]);
                Assert.Null(ours["takenAtSource"]);
                continue;
            }
            Assert.NotNull(value);
            var expected = name == "XMP:CreateDate"
                ? DateTimeOffset.ParseExact(value, "yyyy:MM:dd HH:mm:sszzz", System.Globalization.CultureInfo.InvariantCulture).ToString("yyyy-MM-ddTHH:mm:sszzz", System.Globalization.CultureInfo.InvariantCulture)
                : DateTime.ParseExact(value, "yyyy:MM:dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture).ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)
                    + (offsetTag is null ? "" : theirs[offsetTag]?.ToString() ?? "");
            Assert.True(expected == ours["takenAt"]?.GetValue<string>(), $"{name}: exiftool says {expected}, we say {ours["takenAt"]}");
            Assert.Equal(name == "original" ? "DateTimeOriginal" : name, ours["takenAtSource"]!.GetValue<string>());
        }
    }

    private static int IndexOf(byte[] data, byte[] marker) => data.AsSpan().IndexOf(marker);

    [Fact]
    public async Task A_polyglot_is_processed_as_what_its_bytes_start_as_and_never_served_as_a_page()
    {
        var polyglot = Fixture("nikon-rio.jpg").Concat(Encoding.ASCII.GetBytes("<html><script>alert(1)</script></html>")).ToArray();
        var id = await UploadNewAsync(Admin, polyglot, "page.html");
        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.Equal("ready", State(asset));
        Assert.Equal("image/jpeg", asset["mime"]!.GetValue<string>());
        var content = await Admin.GetAsync($"/api/v1/media/{id}/content", Ct);
        Assert.Equal("image/jpeg", content.Content.Headers.ContentType!.MediaType);
        Assert.Equal("nosniff", content.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("default-src 'none'; sandbox", content.Headers.GetValues("Content-Security-Policy").Single());
    }

    [Fact]
    public async Task A_worker_killed_during_processing_loses_no_job_and_leaves_no_half_written_derivative()
    {
        var id = await UploadNewAsync(Admin, Fixture("canon-paris.jpg"), "paris.jpg");
        // A worker process claims the job, starts processing and is killed (-9): it never finishes or renews its lease.
        var store = Factory.Services.GetRequiredService<JobStore>();
        var claimed = await store.ClaimAsync("media.process", "killed-worker", 1, Ct);
        Assert.Single(claimed);
        // What it had written so far: a temporary file in the store, never under a real key.
        var hot = Path.Combine(Factory.DataDir, "media", "hot", "derivatives", id);
        Directory.CreateDirectory(hot);
        await File.WriteAllBytesAsync(Path.Combine(hot, ".tmp-killed"), new byte[100], Ct);
        await ProcessAsync();
        Assert.Equal("uploaded", State(await GetAsync(Admin, id)));

        Factory.Time.Advance(TimeSpan.FromSeconds(31)); // past the default 30 s lease
        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.Equal("ready", State(asset));
        var job = (await Admin.GetFromJsonAsync<JsonArray>("/api/v1/jobs?type=media.process", Ct))!.Single()!;
        Assert.Equal(2, job["attempts"]!.GetValue<int>());
        foreach (var derivative in asset["derivatives"]!.AsArray())
        {
            var response = await Admin.GetAsync(derivative!["url"]!.GetValue<string>(), Ct);
            using var image = NetVips.Image.NewFromBuffer(await response.Content.ReadAsByteArrayAsync(Ct));
            Assert.Equal(derivative["width"]!.GetValue<int>(), image.Width);
        }
        // Only whole files under real names are ever listed or served.
        Assert.All(asset["derivatives"]!.AsArray(), d => Assert.DoesNotContain(".tmp", d!["url"]!.GetValue<string>(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_video_gets_probe_metadata_a_poster_thumbnails_and_a_preview_clip()
    {
        var video = await MakeWithAsync("ffmpeg", "mp4", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=3:size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-metadata", "title=Test pattern", "{out}");
        var id = await UploadNewAsync(Admin, video, "clip.mov");
        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.Equal("ready", State(asset));
        Assert.Equal("video", asset["type"]!.GetValue<string>());
        var m = asset["metadata"]!;
        Assert.Equal(640, m["width"]!.GetValue<int>());
        Assert.Equal(360, m["height"]!.GetValue<int>());
        Assert.Equal("h264", m["videoCodec"]!.GetValue<string>());
        Assert.Equal("aac", m["audioCodec"]!.GetValue<string>());
        Assert.Equal(25, m["frameRate"]!.GetValue<double>());
        Assert.InRange(m["durationSeconds"]!.GetValue<double>(), 2.9, 3.2);
        Assert.Equal("Test pattern", m["title"]!.GetValue<string>());
        var names = asset["derivatives"]!.AsArray().Select(d => d!["name"]!.GetValue<string>()).Order().ToList();
        Assert.Equal(["poster", "preview", "thumb-large", "thumb-small"], names);
        var preview = await Admin.GetAsync($"/api/v1/media/{id}/derivatives/preview", Ct);
        Assert.Equal("video/mp4", preview.Content.Headers.ContentType!.MediaType);
        Assert.True((await preview.Content.ReadAsByteArrayAsync(Ct)).Length > 1000);
    }

    [Fact]
    public async Task Audio_gets_codec_and_duration_and_a_waveform()
    {
        var audio = await MakeWithAsync("ffmpeg", "flac", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=330:duration=2", "-metadata", "artist=Tester", "{out}");
        var id = await UploadNewAsync(Admin, audio, "tone.flac");
        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.Equal("ready", State(asset));
        Assert.Equal("audio", asset["type"]!.GetValue<string>());
        Assert.Equal("flac", asset["metadata"]!["audioCodec"]!.GetValue<string>());
        Assert.Equal("Tester", asset["metadata"]!["author"]!.GetValue<string>());
        Assert.InRange(asset["metadata"]!["durationSeconds"]!.GetValue<double>(), 1.9, 2.1);
        Assert.Contains(asset["derivatives"]!.AsArray(), d => d!["name"]!.GetValue<string>() == "waveform");
    }

    [Fact]
    public async Task A_pdf_gets_pages_title_author_and_a_first_page_preview()
    {
        Assert.SkipUnless(Tool("pdfinfo") && Tool("pdftoppm"), "poppler-utils is not installed");
        var id = await UploadNewAsync(Admin, MinimalPdf("Quarterly report", "Ada Lovelace", pages: 3), "report.pdf");
        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.True(State(asset) == "ready", asset["failureReason"]?.ToString());
        Assert.Equal("document", asset["type"]!.GetValue<string>());
        Assert.Equal(3, asset["metadata"]!["pageCount"]!.GetValue<int>());
        Assert.Equal("Quarterly report", asset["metadata"]!["title"]!.GetValue<string>());
        Assert.Equal("Ada Lovelace", asset["metadata"]!["author"]!.GetValue<string>());
        Assert.Contains(asset["derivatives"]!.AsArray(), d => d!["name"]!.GetValue<string>() == "page1");
    }

    [Fact]
    public async Task A_file_that_is_not_the_media_it_claims_to_be_fails_in_probing()
    {
        Assert.SkipUnless(Tool("ffprobe"), "ffprobe is not installed");
        var fake = Encoding.ASCII.GetBytes("\0\0\0\u0018ftypisom").Concat(new byte[5000]).ToArray();
        var id = await UploadNewAsync(Admin, fake, "movie.mp4");
        await ProcessAsync();
        var asset = await GetAsync(Admin, id);
        Assert.Equal("failed", State(asset));
        Assert.Contains("ffprobe", asset["failureReason"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    /// <summary>A valid PDF with an info dictionary and <paramref name="pages"/> empty pages, with a correct xref table.</summary>
    private static byte[] MinimalPdf(string title, string author, int pages)
    {
        var objects = new List<string>
        {
            "<< /Type /Catalog /Pages 2 0 R >>",
            $"<< /Type /Pages /Kids [{string.Join(' ', Enumerable.Range(0, pages).Select(i => $"{4 + i} 0 R"))}] /Count {pages} >>",
            $"<< /Title ({title}) /Author ({author}) >>",
        };
        for (var i = 0; i < pages; i++)
        {
            objects.Add("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] >>");
        }
        var body = new StringBuilder("%PDF-1.4\n");
        var offsets = new List<int>();
        for (var i = 0; i < objects.Count; i++)
        {
            offsets.Add(Encoding.ASCII.GetByteCount(body.ToString()));
            body.Append($"{i + 1} 0 obj\n{objects[i]}\nendobj\n");
        }
        var xref = Encoding.ASCII.GetByteCount(body.ToString());
        body.Append($"xref\n0 {objects.Count + 1}\n0000000000 65535 f \n");
        foreach (var offset in offsets)
        {
            body.Append($"{offset:D10} 00000 n \n");
        }
        body.Append($"trailer\n<< /Size {objects.Count + 1} /Root 1 0 R /Info 3 0 R >>\nstartxref\n{xref}\n%%EOF\n");
        return Encoding.ASCII.GetBytes(body.ToString());
    }
}
