using System.ComponentModel;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Fundament.Cli.Commands;

internal sealed class MediaUploadSettings : FundSettings
{
    [CommandArgument(0, "<PATH...>")]
    [Description("Files, or folders (every file under them)")]
    public string[] Paths { get; init; } = [];

    [CommandOption("-p|--parallel <N>")]
    [Description("Files uploaded at once (default 3)")]
    [DefaultValue(3)]
    public int Parallel { get; init; } = 3;

    [CommandOption("--chunk-size <BYTES>")]
    [Description("Bytes per PATCH request (default 8 MiB); a resumed upload restarts at most one chunk back")]
    [DefaultValue(8 << 20)]
    public int ChunkSize { get; init; } = 8 << 20;

    [CommandOption("--limit-rate <BYTES_PER_SECOND>")]
    [Description("At most this many bytes per second for each file (a shared or metered link); default unlimited")]
    public long? LimitRate { get; init; }

    [CommandOption("--tags <TAGS>")]
    [Description("Comma-separated tags for every file")]
    public string? Tags { get; init; }

    public override ValidationResult Validate() =>
        Parallel is < 1 or > 16 ? ValidationResult.Error("--parallel must be between 1 and 16")
        : ChunkSize is < 64 * 1024 or > 256 << 20 ? ValidationResult.Error("--chunk-size must be between 64 KiB and 256 MiB")
        : LimitRate is < 1024 ? ValidationResult.Error("--limit-rate must be at least 1024 bytes per second")
        : base.Validate();
}

/// <summary>
/// <c>fund media upload</c>: tus 1.0 uploads, several files at once, with a progress bar per file and
/// one for the total. Each upload's address is kept (<c>uploads.json</c>, mode 0600) until it
/// finishes, so running the same command again after Ctrl-C or a lost connection resumes every
/// unfinished file where the server has it (HEAD gives the offset) instead of starting over.
/// </summary>
internal sealed class MediaUploadCommand : AsyncCommand<MediaUploadSettings>
{
    private static readonly SemaphoreSlim StateGate = new(1, 1);

    public override async Task<int> ExecuteAsync(CommandContext context, MediaUploadSettings settings, CancellationToken cancellationToken)
    {
        var files = new List<FileInfo>();
        foreach (var path in settings.Paths)
        {
            if (Directory.Exists(path))
            {
                files.AddRange(Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(f => new FileInfo(f)));
            }
            else if (File.Exists(path))
            {
                files.Add(new FileInfo(path));
            }
            else
            {
                throw new CliException(ExitCodes.Usage, $"{path}: no such file or folder.");
            }
        }
        using var api = FundApi.Open(settings.Context);
        var results = new JsonArray();
        var failures = new List<string>();
        var total = files.Sum(f => f.Length);
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async progress =>
            {
                var overall = progress.AddTask($"total ({files.Count} files)", maxValue: Math.Max(1, total));
                await System.Threading.Tasks.Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = settings.Parallel, CancellationToken = cancellationToken }, async (file, ct) =>
                {
                    var bar = progress.AddTask(Markup.Escape(file.Name), maxValue: Math.Max(1, file.Length));
                    try
                    {
                        var result = await UploadAsync(api, file, settings, (done, delta) =>
                        {
                            bar.Value = done;
                            overall.Increment(delta);
                        }, ct);
                        bar.Value = bar.MaxValue;
                        lock (results)
                        {
                            results.Add(result);
                        }
                    }
                    catch (CliException ex)
                    {
                        bar.Description = Markup.Escape($"{file.Name}: failed");
                        lock (failures)
                        {
                            failures.Add($"{file.FullName}: {ex.Message}");
                        }
                    }
                });
            });
        if (settings.Json)
        {
            Output.Json(results);
        }
        else
        {
            foreach (var r in results)
            {
                Console.Out.WriteLine($"{r!["file"]} -> {r["asset"] ?? r["upload"]}");
            }
        }
        foreach (var failure in failures)
        {
            await Console.Error.WriteLineAsync($"fund: {failure}");
        }
        return failures.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }

    private static async Task<JsonNode> UploadAsync(FundApi api, FileInfo file, MediaUploadSettings settings, Action<long, long> reported, CancellationToken cancellationToken)
    {
        var key = $"{api.ContextName}|{api.Server}|{file.FullName}|{file.Length}|{file.LastWriteTimeUtc.Ticks}";
        var location = await StateAsync(s => s.GetValueOrDefault(key), cancellationToken);
        long offset = 0;
        if (location is not null)
        {
            using var head = await api.SendAsync(() => Tus(HttpMethod.Head, location), cancellationToken, throwOnError: false);
            if (head.IsSuccessStatusCode && head.Headers.TryGetValues("Upload-Offset", out var values) && long.TryParse(values.FirstOrDefault(), out var at) && at >= 0 && at <= file.Length)
            {
                offset = at;
            }
            else if (head.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Gone)
            {
                location = null;
            }
            else
            {
                throw await FundApi.ProblemAsync(head, cancellationToken);
            }
        }
        if (location is null)
        {
            var metadata = $"filename {B64(file.Name)}" + (settings.Tags is { Length: > 0 } tags ? $",tags {B64(tags)}" : "");
            using var created = await api.SendAsync(() =>
            {
                var request = Tus(HttpMethod.Post, "api/v1/media/uploads");
                request.Headers.Add("Upload-Length", file.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
                request.Headers.Add("Upload-Metadata", metadata);
                return request;
            }, cancellationToken);
            // Resolved against the request (a server under a path prefix), and kept only if it is on the same server.
            location = created.Headers.Location is { } l
                ? api.OnServer(created.RequestMessage?.RequestUri, l.OriginalString).AbsoluteUri
                : throw new CliException(ExitCodes.Failed, "the server created the upload without a Location.");
            await StateAsync(s => s[key] = location, cancellationToken);
        }
        reported(offset, offset);

        await using var stream = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        var chunk = settings.LimitRate is { } rate ? (int)Math.Min(settings.ChunkSize, Math.Max(1024, rate / 4)) : settings.ChunkSize;
        var buffer = new byte[Math.Min(chunk, Math.Max(1, file.Length))];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var sent = 0L;
        while (offset < file.Length)
        {
            if (settings.LimitRate is { } limit && TimeSpan.FromSeconds((double)sent / limit) - clock.Elapsed is { } ahead && ahead > TimeSpan.Zero)
            {
                await Task.Delay(ahead, cancellationToken);
            }
            stream.Position = offset;
            var length = await stream.ReadAtLeastAsync(buffer, (int)Math.Min(buffer.Length, file.Length - offset), throwOnEndOfStream: true, cancellationToken);
            var at = offset;
            using var patched = await api.SendAsync(() =>
            {
                var request = Tus(HttpMethod.Patch, location);
                request.Headers.Add("Upload-Offset", at.ToString(System.Globalization.CultureInfo.InvariantCulture));
                request.Content = new ByteArrayContent(buffer, 0, length);
                request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/offset+octet-stream");
                return request;
            }, cancellationToken);
            var next = patched.Headers.TryGetValues("Upload-Offset", out var values) && long.TryParse(values.FirstOrDefault(), out var n) ? n : at + length;
            if (next <= at || next > at + length)
            {
                // Not the progress this chunk makes: stop rather than resend forever or skip bytes.
                throw new CliException(ExitCodes.Failed, $"the server reported offset {next} after a chunk from {at} of {length} bytes.");
            }
            reported(next, next - offset);
            sent += next - offset;
            offset = next;
        }
        await StateAsync(s => s.Remove(key), cancellationToken);
        var upload = await api.GetAsync(location, cancellationToken);
        return new JsonObject { ["file"] = file.FullName, ["upload"] = location, ["asset"] = upload?["assetId"]?.DeepClone() };
    }

    private static HttpRequestMessage Tus(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("Tus-Resumable", "1.0.0");
        return request;
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    /// <summary>
    /// Reads or changes <c>uploads.json</c> (unfinished uploads by context and file) under the config folder's lock, shared with other
    /// fund processes, saving each change at once.
    /// </summary>
    private static async Task<T> StateAsync<T>(Func<Dictionary<string, string>, T> use, CancellationToken cancellationToken)
    {
        var path = Path.Combine(CliConfig.Folder, "uploads.json");
        await StateGate.WaitAsync(cancellationToken);
        try
        {
            using var fileLock = await CliConfig.LockAsync(cancellationToken);
            var state = File.Exists(path) ? JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(path, cancellationToken)) ?? [] : [];
            var before = JsonSerializer.Serialize(state);
            var result = use(state);
            var after = JsonSerializer.Serialize(state);
            if (after != before || !File.Exists(path))
            {
                CliConfig.WritePrivate(path, after);
            }
            return result;
        }
        finally
        {
            StateGate.Release();
        }
    }

    private static Task StateAsync(Action<Dictionary<string, string>> change, CancellationToken cancellationToken) => StateAsync<bool>(s =>
    {
        change(s);
        return true;
    }, cancellationToken);
}

internal sealed class MediaListSettings : FundSettings
{
    [CommandOption("--limit <N>")]
    [DefaultValue(50)]
    public int Limit { get; init; } = 50;

    [CommandOption("--state <STATE>")]
    public string? State { get; init; }
}

internal sealed class MediaListCommand : AsyncCommand<MediaListSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, MediaListSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        var node = await api.GetAsync($"api/v1/media?limit={settings.Limit}{(settings.State is { } s ? "&state=" + Url.E(s) : "")}", cancellationToken);
        Output.Items(settings, node, [("ID", i => Output.Text(i, "id")), ("FILE", i => Output.Text(i, "filename")), ("TYPE", i => Output.Text(i, "type")), ("STATE", i => Output.Text(i, "state")), ("SIZE", i => Output.Text(i, "size"))]);
        return ExitCodes.Ok;
    }
}

internal sealed class MediaGetSettings : FundSettings
{
    [CommandArgument(0, "<ID>")]
    public string Id { get; init; } = "";

    [CommandOption("-O|--out <FILE>")]
    [Description("Download the original to FILE instead of printing the asset")]
    public string? Out { get; init; }
}

internal sealed class MediaGetCommand : AsyncCommand<MediaGetSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, MediaGetSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        if (settings.Out is null)
        {
            Output.Object(settings, await api.GetAsync($"api/v1/media/{Url.E(settings.Id)}", cancellationToken));
            return ExitCodes.Ok;
        }
        using var response = await api.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, $"api/v1/media/{Url.E(settings.Id)}/content"), cancellationToken);
        var temp = settings.Out + ".part";
        await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
        {
            await response.Content.CopyToAsync(file, cancellationToken);
        }
        File.Move(temp, settings.Out, overwrite: true);
        return ExitCodes.Ok;
    }
}

internal sealed class MediaRemoveCommand : AsyncCommand<IdSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, IdSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        await api.SendJsonAsync(HttpMethod.Delete, $"api/v1/media/{Url.E(settings.Id)}", null, cancellationToken);
        return ExitCodes.Ok;
    }
}
