using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Jobs;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using NetVips;

namespace Fundament.Tests.Media;

/// <summary>
/// One Fundament (SQLite unless a subclass says otherwise) with media on. The job worker does not
/// poll: tests run it pass by pass with <see cref="ProcessAsync"/>, so every state they check is
/// reached deterministically.
/// </summary>
public abstract class MediaTestBase : IAsyncLifetime
{
    protected readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    protected FundamentFactory Factory { get; private set; } = null!;

    protected HttpClient Admin { get; private set; } = null!;

    public const long MaxUpload = 8L << 20;

    protected virtual IEnumerable<KeyValuePair<string, string>> Settings() => [];

    protected virtual FundamentFactory CreateFactory(IEnumerable<KeyValuePair<string, string>> settings) => new ConfiguredFundamentFactory(settings);

    public virtual async ValueTask InitializeAsync()
    {
        Factory = CreateFactory(
        [
            new("Fundament:Jobs:WorkerEnabled", "false"),
            new("Fundament:Media:PolicyRunnerEnabled", "false"),
            new("Fundament:Media:MaxUploadBytes", MaxUpload.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("Fundament:Media:MaxPixels", "40000000"),
            .. Settings(),
        ]);
        await Factory.InitializeAsync();
        Admin = await Factory.AdminAsync();
    }

    public virtual async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        await Factory.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    /// <summary>Moves the fake clock, and logs the admin in again (tokens expire with the clock).</summary>
    protected async Task AdvanceAsync(TimeSpan by)
    {
        Factory.Time.Advance(by);
        Admin.Dispose();
        Admin = await Factory.AdminAsync();
    }

    /// <summary>Runs worker passes until no job is left to start.</summary>
    protected async Task ProcessAsync()
    {
        var worker = Factory.Services.GetRequiredService<JobWorker>();
        while (await worker.PassAsync(Ct) > 0)
        {
            await worker.IdleAsync();
        }
        await worker.IdleAsync();
    }

    protected static byte[] Fixture(string name) => File.ReadAllBytes(FixturePath(name));

    protected static string FixturePath(string name) => Path.Combine(AppContext.BaseDirectory, "Media", "Fixtures", name);

    protected static MultipartFormDataContent Form(byte[] content, string filename, string? tags = null, string? title = null, string contentType = "application/octet-stream")
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        form.Add(file, "file", filename);
        if (tags is not null)
        {
            form.Add(new StringContent(tags), "tags");
        }
        if (title is not null)
        {
            form.Add(new StringContent(title), "title");
        }
        return form;
    }

    protected async Task<HttpResponseMessage> UploadAsync(HttpClient client, byte[] content, string filename = "file.bin", string? tags = null, string? title = null)
    {
        using var form = Form(content, filename, tags, title);
        return await client.PostAsync("/api/v1/media", form, Ct);
    }

    /// <summary>Uploads, expects 201, and returns the id.</summary>
    protected async Task<string> UploadNewAsync(HttpClient client, byte[] content, string filename = "file.bin", string? tags = null, string? title = null)
    {
        var response = await UploadAsync(client, content, filename, tags, title);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        return (await response.JsonAsync())["id"]!.GetValue<string>();
    }

    protected async Task<JsonNode> GetAsync(HttpClient client, string id)
    {
        var response = await client.GetAsync($"/api/v1/media/{id}", Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.JsonAsync();
    }

    protected static string State(JsonNode asset) => asset["state"]!.GetValue<string>();

    /// <summary>A generated image in the given format (png, webp, gif, tif, jpg).</summary>
    protected static byte[] Image(string format, int width = 800, int height = 600)
    {
        using var gradient = NetVips.Image.Xyz(width, height);
        using var x = gradient[0];
        using var scaled = x.Linear([255.0 / width], [0.0]);
        using var band = scaled.Cast(Enums.BandFormat.Uchar);
        using var rgb = band.Bandjoin(128, 64);
        return rgb.WriteToBuffer("." + format);
    }

    /// <summary>A structurally valid PNG header claiming <paramref name="width"/>×<paramref name="height"/> pixels, with almost no data: a decompression bomb's shape.</summary>
    protected static byte[] PngBomb(uint width, uint height)
    {
        using var stream = new MemoryStream();
        stream.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(ihdr, width);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        Chunk(stream, "IHDR", ihdr);
        Chunk(stream, "IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        Chunk(stream, "IEND", []);
        return stream.ToArray();

        static void Chunk(Stream stream, string type, byte[] data)
        {
            var length = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(length, (uint)data.Length);
            stream.Write(length);
            var body = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            stream.Write(body);
            var crc = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(body));
            stream.Write(crc);
        }
    }

    private static uint Crc32(byte[] data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
            }
        }
        return ~crc;
    }

    protected static bool Tool(string name) => Fundament.Media.Processing.ExternalTool.Available(name);

    /// <summary>Runs a tool to make a test file (ffmpeg); skips when it is not installed (CI installs it).</summary>
    protected static async Task<byte[]> MakeWithAsync(string tool, string extension, params string[] arguments)
    {
        Assert.SkipUnless(Tool(tool), $"{tool} is not installed");
        var output = Path.Combine(Path.GetTempPath(), $"fundament-{Guid.NewGuid():N}.{extension}");
        try
        {
            var start = new ProcessStartInfo(tool) { RedirectStandardError = true, UseShellExecute = false };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument == "{out}" ? output : argument);
            }
            using var process = Process.Start(start)!;
            var errors = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, errors);
            return await File.ReadAllBytesAsync(output);
        }
        finally
        {
            File.Delete(output);
        }
    }
}
