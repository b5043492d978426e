// Usage: Soak <api-url> <gateway-url> <server-pid> <admin-password> <minutes> <photo.jpg> <out-dir>
// Mixed load on one Fundament process, paced (not flat out): logins, secret reads, configuration
// watches with a writer, gateway traffic to an upstream this process hosts, uploads (each photo made
// unique, so each one is processed into thumbnails by a job). Every 10 s it samples the server's RSS,
// GC heap (from /metrics), threads, open files and the load's counts and errors into samples.csv.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

var api = new Uri(args[0]);
var gateway = new Uri(args[1]);
var pid = int.Parse(args[2], CultureInfo.InvariantCulture);
var password = args[3];
var duration = TimeSpan.FromMinutes(double.Parse(args[4], CultureInfo.InvariantCulture));
var photo = File.ReadAllBytes(args[5]);
var outDir = args[6];
Directory.CreateDirectory(outDir);

// The upstream the gateway routes /soak/** to.
var upstream = WebApplication.CreateSlimBuilder();
upstream.WebHost.UseUrls("http://127.0.0.1:0");
upstream.Logging.ClearProviders();
var up = upstream.Build();
up.MapGet("/soak/{**rest}", () => Results.Text("pong"));
await up.StartAsync();
var upstreamPort = new Uri(up.Urls.First()).Port;

var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), MaxConnectionsPerServer = 64 };
using var http = new HttpClient(handler) { BaseAddress = api, Timeout = TimeSpan.FromSeconds(60) };
async Task<string> LoginAsync()
{
    var response = await http.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password });
    response.EnsureSuccessStatusCode();
    return (await response.Content.ReadFromJsonAsync<JsonNode>())!["access_token"]!.GetValue<string>();
}
var token = await LoginAsync();
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
(await http.PutAsJsonAsync("/api/v1/secrets/soak/db", new { value = new { password = "soak" } })).EnsureSuccessStatusCode();
(await http.PutAsJsonAsync("/api/v1/config/entries", new { service = "soak", environment = "*", key = "n", value = 0 })).EnsureSuccessStatusCode();
(await http.PostAsJsonAsync("/api/v1/registry/instances", new { service = "soak", address = "127.0.0.1", port = upstreamPort, routes = new object[] { new { path = "/soak/{**rest}", auth = "anonymous" } } })).EnsureSuccessStatusCode();

var counts = new ConcurrentDictionary<string, long>();
var errors = new ConcurrentDictionary<string, long>();
var lastError = new ConcurrentDictionary<string, string>();
using var stop = new CancellationTokenSource(duration);
var ct = stop.Token;

async Task Loop(string kind, TimeSpan pace, Func<Task<bool>> once)
{
    while (!ct.IsCancellationRequested)
    {
        try
        {
            if (await once())
            {
                counts.AddOrUpdate(kind, 1, (_, n) => n + 1);
            }
            else
            {
                errors.AddOrUpdate(kind, 1, (_, n) => n + 1);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex)
        {
            errors.AddOrUpdate(kind, 1, (_, n) => n + 1);
            lastError[kind] = ex.GetType().Name + ": " + ex.Message;
        }
        try
        {
            await Task.Delay(pace, ct);
        }
        catch (OperationCanceledException)
        {
            return;
        }
    }
}

async Task<bool> Ok(Task<HttpResponseMessage> send, string kind)
{
    using var response = await send;
    if (!response.IsSuccessStatusCode)
    {
        lastError[kind] = $"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}";
    }
    return response.IsSuccessStatusCode;
}

var configIndex = 0L;
var uploads = 0;
var tasks = new List<Task>
{
    Loop("login", TimeSpan.FromSeconds(2), async () =>
    {
        using var anonymous = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/login") { Content = JsonContent.Create(new { username = "admin", password }) };
        return await Ok(http.SendAsync(anonymous, ct), "login");
    }),
    Loop("config-write", TimeSpan.FromSeconds(1), () => Ok(http.PutAsJsonAsync("/api/v1/config/entries", new { service = "soak", environment = "*", key = "n", value = Interlocked.Increment(ref configIndex) }, ct), "config-write")),
    Loop("upload", TimeSpan.FromSeconds(2), async () =>
    {
        // A unique photo each time (a trailing comment after the JPEG's end), so each one is stored and processed.
        var bytes = photo.Concat(BitConverter.GetBytes(Interlocked.Increment(ref uploads))).Concat(Guid.NewGuid().ToByteArray()).ToArray();
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(bytes);
        file.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        form.Add(file, "file", "soak.jpg");
        return await Ok(http.PostAsync("/api/v1/media", form, ct), "upload");
    }),
};
for (var i = 0; i < 4; i++)
{
    tasks.Add(Loop("secret-read", TimeSpan.FromMilliseconds(10), () => Ok(http.GetAsync("/api/v1/secrets/soak/db", ct), "secret-read")));
    tasks.Add(Loop("gateway", TimeSpan.FromMilliseconds(5), () => Ok(http.GetAsync(new Uri(gateway, "/soak/ping"), ct), "gateway")));
    tasks.Add(Loop("config-watch", TimeSpan.Zero, async () =>
    {
        var first = await http.GetAsync("/api/v1/config/resolved?service=soak", ct);
        var index = first.Headers.GetValues("X-Fundament-Index").Single();
        first.Dispose();
        return await Ok(http.GetAsync($"/api/v1/config/resolved?service=soak&index={index}&wait=30s", ct), "config-watch");
    }));
}
// The access token lives 15 minutes by default: a new one every 10.
tasks.Add(Task.Run(async () =>
{
    while (!ct.IsCancellationRequested)
    {
        try
        {
            await Task.Delay(TimeSpan.FromMinutes(10), ct);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await LoginAsync());
        }
        catch (OperationCanceledException)
        {
            return;
        }
    }
}));

using var scrape = new HttpClient { BaseAddress = api };
var csv = new StreamWriter(Path.Combine(outDir, "samples.csv")) { AutoFlush = true };
await csv.WriteLineAsync("seconds,rss_mb,gc_heap_mb,threads,open_files,requests,errors");
var clock = Stopwatch.StartNew();
while (!ct.IsCancellationRequested)
{
    var status = File.ReadAllLines($"/proc/{pid}/status");
    double Kb(string field) => double.Parse(status.First(l => l.StartsWith(field, StringComparison.Ordinal)).Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    var rss = Kb("VmRSS") / 1024;
    var threads = Kb("Threads");
    var files = Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;
    double heap = double.NaN;
    try
    {
        var metrics = await scrape.GetStringAsync("/metrics", ct);
        heap = metrics.Split('\n').Where(l => l.StartsWith("dotnet_gc_last_collection_heap_size_bytes", StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)) / (1 << 20);
    }
    catch (Exception) when (!ct.IsCancellationRequested)
    {
    }
    catch (OperationCanceledException)
    {
        break;
    }
    await csv.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds:0},{rss:0.0},{heap:0.0},{threads},{files},{counts.Values.Sum()},{errors.Values.Sum()}"));
    try
    {
        await Task.Delay(TimeSpan.FromSeconds(10), ct);
    }
    catch (OperationCanceledException)
    {
        break;
    }
}
await Task.WhenAll(tasks);
await up.StopAsync();
using var summary = new StreamWriter(Path.Combine(outDir, "counts.txt"));
foreach (var kind in counts.Keys.Union(errors.Keys).Order(StringComparer.Ordinal))
{
    await summary.WriteLineAsync($"{kind}: {counts.GetValueOrDefault(kind)} ok, {errors.GetValueOrDefault(kind)} errors{(lastError.TryGetValue(kind, out var e) ? " (last: " + e + ")" : "")}");
}
Console.WriteLine(File.ReadAllText(Path.Combine(outDir, "counts.txt")).Length > 0 ? "done" : "no load");
