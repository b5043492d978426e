using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Gateway;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Cluster;

/// <summary>
/// The README tour across three real <c>fundament</c> processes on PostgreSQL, Redis and S3 (and
/// RabbitMQ when configured): <c>--roles control</c>, <c>--roles gateway</c> and
/// <c>--roles media,media-worker</c>, each step on another node than the last. Then the media node
/// is killed with SIGKILL mid-job, and a media node started afterwards finishes the job.
/// </summary>
public sealed class ClusterTourTests : IAsyncLifetime
{
    private const string Password = "Cluster-Tour-Password-1";

    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly List<Node> _nodes = [];
    private string? _database;
    private List<KeyValuePair<string, string>> _shared = [];

    public async ValueTask InitializeAsync()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        var redis = TestRedis.Require();
        var hot = await TestS3.NewBucketAsync();
        var cold = await TestS3.NewBucketAsync();
        _database = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
        _shared =
        [
            new("Fundament:Storage:Provider", "postgres"),
            new("ConnectionStrings:Fundament", _database),
            new("Fundament:MasterKey", Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))),
            new("Fundament:Identity:Issuer", "https://fundament.tour.test"),
            new("Fundament:Identity:BootstrapAdminPassword", Password),
            new("Fundament:Identity:PasswordHashIterations", "10000"),
            new("Fundament:Redis:Configuration", redis),
            new("Fundament:Redis:KeyPrefix", TestRedis.UniquePrefix()),
            new("Fundament:Cluster:HeartbeatInterval", "00:00:01"),
            new("Fundament:Cluster:SuspectAfter", "00:00:03"),
            new("Fundament:Cluster:GoneAfter", "00:00:06"),
            new("Fundament:Jobs:LeaseDuration", "00:00:05"),
            new("Fundament:Jobs:PollInterval", "00:00:00.2"),
            .. TestS3.Settings("Fundament:Media:Storage", hot),
            .. TestS3.Settings("Fundament:Media:ColdStorage", cold),
            .. (TestRabbitMq.Available ? TestRabbitMq.Settings(TestRabbitMq.UniquePrefix()) : []),
        ];
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }
        if (_database is not null)
        {
            await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, _database);
        }
    }

    [Fact]
    public async Task TheTour_RunsAcrossThreeNodes_AndAKilledMediaNodesJob_IsFinishedByTheNextOne()
    {
        var control = await StartAsync("control", [new("Fundament:Registry:Self:Enabled", "true"), new("Fundament:Registry:Self:Ttl", "00:00:05")]);
        using var onControl = await ChildProcess.SignedInAsync(control.ApiPort, Password, _ct);
        var token = onControl.DefaultRequestHeaders.Authorization!.Parameter!;
        var gateway = await StartAsync("gateway", []);
        KeyValuePair<string, string>[] selfRegistered = [new("Fundament:Registry:Self:Enabled", "true"), new("Fundament:Registry:Self:Ttl", "00:00:05")];
        var media = await StartAsync("media,media-worker", selfRegistered);
        using var onGateway = Client(gateway.GatewayPort, token);
        using var onMedia = Client(media.ApiPort, token);

        // 1. Signed in on control, the token works through the gateway (which routes the API to control).
        var me = await EventuallyAsync(() => onGateway.GetAsync("/api/v1/me", _ct));
        Assert.Contains("admin", (await me.Content.ReadFromJsonAsync<JsonNode>(_ct))!["roles"]!.AsArray().Select(r => r!.GetValue<string>()));

        // 2. The cluster sees three alive nodes, one per role, whichever node answers.
        var cluster = (await (await EventuallyAsync(() => onGateway.GetAsync("/api/v1/cluster/nodes", _ct))).Content.ReadFromJsonAsync<JsonNode>(_ct))!;
        Assert.Equal(
            ["control", "gateway", "media,media-worker"],
            cluster["nodes"]!.AsArray().Where(n => n!["status"]!.GetValue<string>() == "alive")
                .Select(n => string.Join(',', n!["roles"]!.AsArray().Select(r => r!.GetValue<string>()))).Order(StringComparer.Ordinal));
        Assert.All(cluster["liveNodesByRole"]!.AsObject(), r => Assert.Equal(1, r.Value!.GetValue<int>()));

        // 3. Registered on control, routed by the gateway.
        await using var echo = await EchoService.StartAsync(name: "tour-echo");
        var registered = await onControl.PostAsJsonAsync("/api/v1/registry/instances",
            new { service = "tour", address = "127.0.0.1", port = echo.Port, routes = new object[] { new { path = "/tour/{**rest}", auth = "anonymous" } } }, _ct);
        Assert.True(registered.StatusCode == HttpStatusCode.Created, await registered.Content.ReadAsStringAsync(_ct));
        var routed = await EventuallyAsync(() => onGateway.GetAsync("/tour/hello", _ct));
        Assert.Equal("tour-echo", (await routed.Content.ReadFromJsonAsync<JsonNode>(_ct))!["instance"]!.GetValue<string>());

        // 4. A secret written on control is read through the gateway.
        Assert.True((await onControl.PutAsJsonAsync("/api/v1/secrets/tour/db", new { value = new { password = "s3cret-on-control" } }, _ct)).IsSuccessStatusCode);
        var secret = await (await onGateway.GetAsync("/api/v1/secrets/tour/db", _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.Equal("s3cret-on-control", secret!["value"]!["password"]!.GetValue<string>());

        // 5. A configuration change made on control answers a watch held through the gateway.
        Assert.True((await onControl.PutAsJsonAsync("/api/v1/config/entries", new { service = "tour", environment = "*", key = "feature", value = false }, _ct)).IsSuccessStatusCode);
        var first = await onGateway.GetAsync("/api/v1/config/resolved?service=tour", _ct);
        var index = long.Parse(first.Headers.GetValues("X-Fundament-Index").Single(), CultureInfo.InvariantCulture);
        var watch = onGateway.GetAsync($"/api/v1/config/resolved?service=tour&index={index}&wait=30s", _ct);
        await Task.Delay(200, _ct);
        Assert.False(watch.IsCompleted);
        Assert.True((await onControl.PutAsJsonAsync("/api/v1/config/entries", new { service = "tour", environment = "*", key = "feature", value = true }, _ct)).IsSuccessStatusCode);
        var changed = await (await watch.WaitAsync(TimeSpan.FromSeconds(30), _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        Assert.True(changed!["values"]!["feature"]!.GetValue<bool>());

        // 6. A photo uploaded through the gateway (which sends /api/v1/media to media nodes, the rest of /api to control)
        // is processed on the media node, exactly once.
        await EventuallyAsync(() => onGateway.GetAsync("/api/v1/media?limit=1", _ct));
        var photo = await UploadAsync(onGateway, Path.Combine(AppContext.BaseDirectory, "Media", "Fixtures", "canon-paris.jpg"), "image/jpeg");
        await ReadyAsync(onGateway, photo, TimeSpan.FromSeconds(60));
        Assert.Equal(photo, (await onMedia.GetFromJsonAsync<JsonNode>($"/api/v1/media/{photo}", _ct))!["id"]!.GetValue<string>());
        // The asset turns ready inside the job, a moment before the job itself is marked done.
        var photoJob = await JobDoneAsync(onControl, photo);
        Assert.Equal("succeeded", photoJob["state"]!.GetValue<string>());
        Assert.Equal(1, photoJob["attempts"]!.GetValue<int>());

        // 7. SIGKILL the media node while it processes a video; a media node started afterwards finishes the job.
        var video = Path.Combine(Path.GetTempPath(), $"tour-{Guid.NewGuid():N}.mp4");
        await RunAsync("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=20:size=1920x1080:rate=30", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", video);
        var clip = await UploadAsync(onGateway, video, "video/mp4");
        File.Delete(video);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((await JobAsync(onControl, clip))["state"]!.GetValue<string>() != "running")
        {
            Assert.True(DateTime.UtcNow < deadline, "the video job never started running");
            await Task.Delay(100, _ct);
        }
        media.Process.Kill(entireProcessTree: true);
        await media.Process.WaitForExitAsync(_ct);
        Assert.Equal("running", (await JobAsync(onControl, clip))["state"]!.GetValue<string>());

        var second = await StartAsync("media,media-worker", selfRegistered);
        using var onSecond = Client(second.ApiPort, token);
        await ReadyAsync(onSecond, clip, TimeSpan.FromSeconds(120));
        var clipJob = await JobDoneAsync(onControl, clip);
        Assert.Equal("succeeded", clipJob["state"]!.GetValue<string>());
        Assert.Equal(2, clipJob["attempts"]!.GetValue<int>());

        // The killed node turns suspect, then gone; the new one is alive, and the media roles still have a live node.
        JsonNode view;
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        do
        {
            await Task.Delay(500, _ct);
            view = (await onControl.GetFromJsonAsync<JsonNode>("/api/v1/cluster/nodes", _ct))!;
        }
        while (Status(view, media.Id) != "gone" && DateTime.UtcNow < deadline);
        Assert.Equal("gone", Status(view, media.Id));
        Assert.Equal("alive", Status(view, second.Id));
        Assert.Equal(1, view["liveNodesByRole"]!["media-worker"]!.GetValue<int>());

        // 8. A node started under the id of a live one is refused: two nodes under one id would both hold its leases.
        var twin = new ConcurrentQueue<string>();
        using (var process = ChildProcess.StartDotnet(Path.Combine(AppContext.BaseDirectory, "fundament.dll"),
            [.. Environment(_shared), new("Fundament__Roles", "gateway"), new("Fundament__Cluster__NodeId", control.Id),
                new("Fundament__DataDir", Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N")))],
            ["--urls", $"http://127.0.0.1:{TestPorts.Next()}"], onOutput: twin.Enqueue, onError: twin.Enqueue))
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(90));
            await process.WaitForExitAsync(timeout.Token);
            Assert.Equal(2, process.ExitCode);
        }
        Assert.Contains(twin, l => l.Contains($"Fundament:Cluster:NodeId '{control.Id}' is in use by a live node", StringComparison.Ordinal));

        // 9. Draining a control node: a second one joins, the first stops cleanly (SIGTERM). It is gone at once and gives its
        // leases up instead of leaving them to run out, the second takes the duties over, and the API stays reachable through the gateway.
        var control2 = await StartAsync("control", [new("Fundament:Registry:Self:Enabled", "true"), new("Fundament:Registry:Self:Ttl", "00:00:05")]);
        using var onControl2 = Client(control2.ApiPort, token);
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!Leases(view = (await onControl2.GetFromJsonAsync<JsonNode>("/api/v1/cluster/nodes", _ct))!, control.Id).Contains("alerts-evaluator"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the first control node never held the alerts-evaluator lease");
            await Task.Delay(250, _ct);
        }
        using (var term = Process.Start("kill", ["-TERM", control.Process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await term.WaitForExitAsync(_ct);
        }
        await control.Process.WaitForExitAsync(_ct);
        view = (await onControl2.GetFromJsonAsync<JsonNode>("/api/v1/cluster/nodes", _ct))!;
        var drained = view["nodes"]!.AsArray().Single(n => n!["id"]!.GetValue<string>() == control.Id)!;
        Assert.Equal("gone", drained["status"]!.GetValue<string>());
        Assert.NotNull(drained["stoppedAt"]);
        Assert.Empty(drained["leases"]!.AsArray());
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!Leases(view = (await onControl2.GetFromJsonAsync<JsonNode>("/api/v1/cluster/nodes", _ct))!, control2.Id).Contains("alerts-evaluator"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the second control node never took the alerts-evaluator lease over");
            await Task.Delay(250, _ct);
        }
        await EventuallyAsync(() => onGateway.GetAsync("/api/v1/me", _ct));
    }

    private static IEnumerable<KeyValuePair<string, string>> Environment(IEnumerable<KeyValuePair<string, string>> settings) =>
        settings.Select(s => new KeyValuePair<string, string>(s.Key.Replace(":", "__", StringComparison.Ordinal), s.Value));

    private static List<string> Leases(JsonNode view, string id) =>
        view["nodes"]!.AsArray().SingleOrDefault(n => n!["id"]!.GetValue<string>() == id)?["leases"]!.AsArray().Select(l => l!["name"]!.GetValue<string>()).ToList() ?? [];

    private static string? Status(JsonNode view, string id) =>
        view["nodes"]!.AsArray().SingleOrDefault(n => n!["id"]!.GetValue<string>() == id)?["status"]!.GetValue<string>();

    private async Task<Node> StartAsync(string roles, KeyValuePair<string, string>[] extra)
    {
        int apiPort = TestPorts.Next(), gatewayPort = TestPorts.Next();
        var id = roles.Replace(',', '-') + "-" + Guid.NewGuid().ToString("N")[..6];
        var output = new ConcurrentQueue<string>();
        var dataDir = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));
        KeyValuePair<string, string>[] settings =
        [
            .. _shared,
            new("Fundament:Roles", roles),
            new("Fundament:DataDir", dataDir),
            new("Fundament:Cluster:NodeId", id),
            new("Fundament:Gateway:Urls", $"http://127.0.0.1:{gatewayPort}"),
            .. extra,
        ];
        var process = ChildProcess.StartDotnet(Path.Combine(AppContext.BaseDirectory, "fundament.dll"),
            Environment(settings), ["--urls", $"http://127.0.0.1:{apiPort}"], onOutput: output.Enqueue, onError: output.Enqueue);
        var node = new Node(id, process, apiPort, gatewayPort, output, dataDir);
        _nodes.Add(node);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") };
        for (var i = 0; i < 360; i++)
        {
            Assert.False(process.HasExited, $"node {id} exited with {(process.HasExited ? process.ExitCode : 0)}:\n{string.Join('\n', output.TakeLast(30))}");
            try
            {
                if ((await http.GetAsync("/health/ready", _ct)).StatusCode == HttpStatusCode.OK)
                {
                    return node;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(250, _ct);
        }
        Assert.Fail($"node {id} never became ready:\n{string.Join('\n', output.TakeLast(30))}");
        return node;
    }

    private static HttpClient Client(int port, string token)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    private async Task<HttpResponseMessage> EventuallyAsync(Func<Task<HttpResponseMessage>> send)
    {
        HttpResponseMessage response = null!;
        for (var i = 0; i < 150; i++)
        {
            response = await send();
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return response;
            }
            await Task.Delay(200, _ct);
        }
        Assert.Fail($"still {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(_ct)}");
        return response;
    }

    private async Task<string> UploadAsync(HttpClient http, string path, string type)
    {
        using var content = new MultipartFormDataContent();
        var file = new StreamContent(File.OpenRead(path));
        file.Headers.ContentType = new MediaTypeHeaderValue(type);
        content.Add(file, "file", Path.GetFileName(path));
        var response = await http.PostAsync("/api/v1/media", content, _ct);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(_ct));
        return (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["id"]!.GetValue<string>();
    }

    private async Task ReadyAsync(HttpClient media, string asset, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        string state;
        while ((state = (await media.GetFromJsonAsync<JsonNode>($"/api/v1/media/{asset}", _ct))!["state"]!.GetValue<string>()) != "ready")
        {
            Assert.True(state is "uploaded" or "processing", $"asset {asset} is {state}");
            Assert.True(DateTime.UtcNow < deadline, $"asset {asset} still {state} after {within}");
            await Task.Delay(250, _ct);
        }
    }

    private async Task<JsonNode> JobAsync(HttpClient control, string asset)
    {
        var jobs = (await control.GetFromJsonAsync<JsonArray>("/api/v1/jobs?type=media.process&limit=100", _ct))!;
        return jobs.Single(j => j!["payload"]?.ToJsonString().Contains(asset, StringComparison.Ordinal) == true)!;
    }

    private async Task<JsonNode> JobDoneAsync(HttpClient control, string asset)
    {
        JsonNode job;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((job = await JobAsync(control, asset))["state"]!.GetValue<string>() is "queued" or "running" && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, _ct);
        }
        return job;
    }

    private async Task RunAsync(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var error = await process.StandardError.ReadToEndAsync(_ct);
        await process.WaitForExitAsync(_ct);
        Assert.True(process.ExitCode == 0, $"{tool} failed: {error}");
    }

    private sealed record Node(string Id, Process Process, int ApiPort, int GatewayPort, ConcurrentQueue<string> Output, string DataDir) : IDisposable
    {
        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit();
            }
            Process.Dispose();
            if (Directory.Exists(DataDir))
            {
                Directory.Delete(DataDir, recursive: true);
            }
        }
    }
}
