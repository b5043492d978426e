// Usage: WatchFanout <api-base-url> <bearer-token> <server-pid> <watchers> <rounds>
// Each round: N blocking watches (GET /api/v1/registry/services/{name}/instances?index=&wait=) are
// parked on one service; one registration changes it; every watcher's answer is timed from the
// moment the registration was acknowledged. The server's resident memory is read from /proc before
// the watchers are parked and while they are.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;

if (args is not [var baseUrl, var token, var pidText, var watchersText, var roundsText])
{
    Console.Error.WriteLine("usage: WatchFanout <api-base-url> <bearer-token> <server-pid> <watchers> <rounds>");
    return 2;
}
var pid = int.Parse(pidText, CultureInfo.InvariantCulture);
var watchers = int.Parse(watchersText, CultureInfo.InvariantCulture);
var rounds = int.Parse(roundsText, CultureInfo.InvariantCulture);
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = watchers + 16, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
{
    BaseAddress = new Uri(baseUrl),
    Timeout = TimeSpan.FromMinutes(2),
};
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
const string Service = "fanout";
var path = $"/api/v1/registry/services/{Service}/instances";

async Task<long> IndexAsync()
{
    using var response = await http.GetAsync(path);
    response.EnsureSuccessStatusCode();
    return long.Parse(response.Headers.GetValues("X-Fundament-Index").Single(), CultureInfo.InvariantCulture);
}

async Task RegisterAsync(int n)
{
    using var response = await http.PostAsJsonAsync("/api/v1/registry/instances", new
    {
        service = Service, instanceId = $"fanout-{n}", address = "127.0.0.1", port = 20000 + n,
    });
    response.EnsureSuccessStatusCode();
}

long Rss() => File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
    .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024).Single();

await RegisterAsync(0);
var results = new List<(double P50, double P99, double All, double BytesPerWatcher)>();
for (var round = 0; round <= rounds; round++)
{
    var index = await IndexAsync();
    GC.Collect();
    await Task.Delay(500);
    var before = Rss();
    var clock = Stopwatch.StartNew();
    var done = new double[watchers];
    var parked = Enumerable.Range(0, watchers).Select(async i =>
    {
        using var response = await http.GetAsync($"{path}?index={index}&wait=60s");
        done[i] = clock.Elapsed.TotalMilliseconds;
        response.EnsureSuccessStatusCode();
        var seen = long.Parse(response.Headers.GetValues("X-Fundament-Index").Single(), CultureInfo.InvariantCulture);
        if (seen <= index)
        {
            throw new InvalidOperationException($"watcher {i} answered without the change (index {seen})");
        }
    }).ToList();
    // Let every watch reach the server and park (they are answered only on a change).
    await Task.Delay(TimeSpan.FromSeconds(3));
    if (parked.Any(t => t.IsCompleted))
    {
        throw new InvalidOperationException("a watcher answered before the change");
    }
    var during = Rss();
    await RegisterAsync(round + 1);
    var changedAt = clock.Elapsed.TotalMilliseconds;
    await Task.WhenAll(parked);
    var latencies = done.Select(d => Math.Max(0, d - changedAt)).Order().ToArray();
    var result = (latencies[latencies.Length / 2], latencies[(int)(latencies.Length * 0.99) - 1], latencies[^1], (during - before) / (double)watchers);
    if (round > 0)
    {
        // Round 0 warms the server (JIT, connection set-up) and is not counted.
        results.Add(result);
    }
    Console.WriteLine($"round {round}{(round == 0 ? " (warm-up)" : "")}: {watchers} watchers, after the change: p50 {result.Item1:F0} ms, p99 {result.Item2:F0} ms, all {result.Item3:F0} ms; server memory {(during - before) / 1024.0 / watchers:F1} KiB per parked watcher");
}
double Median(IEnumerable<double> values) => values.Order().ElementAt(results.Count / 2);
Console.WriteLine($"RESULT watchers={watchers} p50_ms={Median(results.Select(r => r.P50)):F0} p99_ms={Median(results.Select(r => r.P99)):F0} all_ms={Median(results.Select(r => r.All)):F0} kib_per_watcher={Median(results.Select(r => r.BytesPerWatcher)) / 1024:F1}");
return 0;
