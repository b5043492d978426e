// Event store benchmark client. Every mode prints one line "RESULT <mode> <events/s> <p50 ms> <p99 ms>".
//   append     <url> <token> <concurrency> <batch> <seconds>      appends through POST /api/v1/streams/{stream}/events
//   raw-append <sqlite|postgres> <connection> <concurrency> <batch> <seconds>
//                                                                  the same rows, INSERTed into a copy of events_events
//   catchup    <url> <token> <events>                              appends <events>, then one catch-up subscription from
//                                                                  the start pulls (max 1000) and acks them all
//   raw-read   <sqlite|postgres> <connection> <events>             the same number of rows read in pages of 1000 by position
using System.Data.Common;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Npgsql;

var mode = args[0];
switch (mode)
{
    case "append":
        await AppendAsync(args[1], args[2], int.Parse(args[3]), int.Parse(args[4]), int.Parse(args[5]));
        break;
    case "raw-append":
        await RawAppendAsync(args[1], args[2], int.Parse(args[3]), int.Parse(args[4]), int.Parse(args[5]));
        break;
    case "catchup":
        await CatchUpAsync(args[1], args[2], int.Parse(args[3]));
        break;
    case "raw-read":
        await RawReadAsync(args[1], args[2], int.Parse(args[3]));
        break;
    default:
        throw new ArgumentException($"unknown mode {mode}");
}

static string Data(int i) => $$"""{"orderId":"o-{{i}}","customer":"c-{{i % 97}}","total":{{i % 1000}}.5,"lines":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}]}""";

static HttpClient Client(string url, string token)
{
    var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 1024, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
    var client = new HttpClient(handler) { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(5) };
    client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    return client;
}

static void Report(string mode, long events, TimeSpan elapsed, List<double> latencies)
{
    latencies.Sort();
    double At(double q) => latencies.Count == 0 ? 0 : latencies[Math.Min(latencies.Count - 1, (int)(q * latencies.Count))];
    Console.WriteLine(FormattableString.Invariant($"RESULT {mode} {events / elapsed.TotalSeconds:0} {At(0.5):0.00} {At(0.99):0.00}"));
}

/// <summary>
/// Runs <paramref name="concurrency"/> writers for <paramref name="seconds"/>: each gets its step from
/// <paramref name="writer"/> (with what it owns, disposed at the end) and calls it with its request
/// number n, timing each call, then reports events/s and latency under <paramref name="mode"/>.
/// </summary>
static async Task WritersAsync(string mode, int concurrency, int batch, int seconds, Func<int, (Func<int, Task> Step, IDisposable? Owned)> writer)
{
    var deadline = Stopwatch.StartNew();
    long total = 0;
    var latencies = new List<double>[concurrency];
    var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
    {
        latencies[w] = [];
        var (step, owned) = writer(w);
        using var _ = owned;
        for (var n = 0; deadline.Elapsed.TotalSeconds < seconds; n++)
        {
            var started = Stopwatch.GetTimestamp();
            await step(n);
            latencies[w].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            Interlocked.Add(ref total, batch);
        }
    })).ToList();
    await Task.WhenAll(workers);
    Report(mode, total, deadline.Elapsed, latencies.SelectMany(l => l).ToList());
}

static async Task AppendAsync(string url, string token, int concurrency, int batch, int seconds)
{
    using var http = Client(url, token);
    var run = Guid.NewGuid().ToString("N")[..8];
    await WritersAsync($"append-c{concurrency}-b{batch}", concurrency, batch, seconds, w => (async n =>
    {
        // A stream per writer and 100 requests, as services append: expected version any.
        var events = new JsonArray();
        for (var i = 0; i < batch; i++)
        {
            events.Add(new JsonObject { ["id"] = $"{run}-{w}-{n}-{i}", ["type"] = "OrderPlaced", ["data"] = JsonNode.Parse(Data(n * batch + i)) });
        }
        using var response = await http.PostAsJsonAsync($"/api/v1/streams/bench-{run}-{w}-{n / 100}/events", new JsonObject { ["expectedVersion"] = "any", ["events"] = events });
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"append answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }, null));
}

static DbConnection Open(string provider, string connection)
{
    DbConnection db = provider == "postgres" ? new NpgsqlConnection(connection) : new SqliteConnection(connection);
    db.Open();
    if (provider != "postgres")
    {
        Execute(db, "PRAGMA journal_mode=WAL; PRAGMA busy_timeout = 30000;");
    }
    return db;
}

static void Execute(DbConnection db, string sql)
{
    using var command = db.CreateCommand();
    command.CommandText = sql;
    command.ExecuteNonQuery();
}

static async Task RawAppendAsync(string provider, string connection, int concurrency, int batch, int seconds)
{
    using (var db = Open(provider, connection))
    {
        // events_events' shape and indexes, so each row costs the database what an event costs.
        Execute(db, """
            DROP TABLE IF EXISTS bench_events;
            CREATE TABLE bench_events (position BIGINT NOT NULL PRIMARY KEY, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, version BIGINT NOT NULL,
                type TEXT NOT NULL, schema_version INTEGER NOT NULL DEFAULT 1, data TEXT NOT NULL, metadata TEXT NULL, recorded_at BIGINT NOT NULL, UNIQUE (stream, version));
            CREATE INDEX bench_events_type ON bench_events (type, position);
            """);
    }
    var run = Guid.NewGuid().ToString("N")[..8];
    await WritersAsync($"raw-append-c{concurrency}-b{batch}", concurrency, batch, seconds, w =>
    {
        var db = Open(provider, connection);
        return (async n =>
        {
            await using var transaction = await db.BeginTransactionAsync();
            using var command = db.CreateCommand();
            command.Transaction = transaction;
            var sql = new StringBuilder("INSERT INTO bench_events (position, id, stream, version, type, data, recorded_at) VALUES ");
            for (var i = 0; i < batch; i++)
            {
                sql.Append(i == 0 ? "" : ",").Append(FormattableString.Invariant($"(@p{i}, @id{i}, @s{i}, @v{i}, 'OrderPlaced', @d{i}, @t)"));
                Add(command, $"p{i}", (long)w * 1_000_000_000 + (long)n * batch + i);
                Add(command, $"id{i}", $"{run}-{w}-{n}-{i}");
                Add(command, $"s{i}", $"bench-{run}-{w}-{n / 100}");
                Add(command, $"v{i}", (long)(n % 100) * batch + i);
                Add(command, $"d{i}", Data(n * batch + i));
            }
            Add(command, "t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            command.CommandText = sql.ToString();
            await command.ExecuteNonQueryAsync();
            await transaction.CommitAsync();
        }, db);
    });
}

static void Add(DbCommand command, string name, object value)
{
    var parameter = command.CreateParameter();
    parameter.ParameterName = name;
    parameter.Value = value;
    command.Parameters.Add(parameter);
}

static async Task CatchUpAsync(string url, string token, int count)
{
    using var http = Client(url, token);
    var run = Guid.NewGuid().ToString("N")[..8];
    var prefix = $"catchup-{run}-";
    for (var appended = 0; appended < count; appended += 500)
    {
        var events = new JsonArray();
        for (var i = 0; i < Math.Min(500, count - appended); i++)
        {
            events.Add(new JsonObject { ["id"] = $"{run}-{appended + i}", ["type"] = "OrderPlaced", ["data"] = JsonNode.Parse(Data(appended + i)) });
        }
        (await http.PostAsJsonAsync($"/api/v1/streams/{prefix}{appended / 5000}/events", new JsonObject { ["expectedVersion"] = "any", ["events"] = events })).EnsureSuccessStatusCode();
    }
    (await http.PostAsJsonAsync("/api/v1/subscriptions", new { name = $"catchup-{run}", filter = new { streamPrefix = prefix }, from = "start", mode = "catchup" })).EnsureSuccessStatusCode();
    var clock = Stopwatch.StartNew();
    var received = 0;
    var latencies = new List<double>();
    while (received < count)
    {
        var started = Stopwatch.GetTimestamp();
        using var pulled = await http.PostAsync($"/api/v1/subscriptions/catchup-{run}/pull?max=1000&wait=5", null);
        pulled.EnsureSuccessStatusCode();
        var batch = (await pulled.Content.ReadFromJsonAsync<JsonNode>())!["events"]!.AsArray();
        var leaseIds = batch.Select(e => e!["leaseId"]!.GetValue<string>()).ToArray();
        (await http.PostAsJsonAsync($"/api/v1/subscriptions/catchup-{run}/ack", new { leaseIds })).EnsureSuccessStatusCode();
        latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        received += batch.Count;
    }
    Report("catchup", received, clock.Elapsed, latencies);
}

static async Task RawReadAsync(string provider, string connection, int count)
{
    using var db = Open(provider, connection);
    var clock = Stopwatch.StartNew();
    long after = 0;
    var read = 0;
    var latencies = new List<double>();
    while (read < count)
    {
        var started = Stopwatch.GetTimestamp();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT position, id, stream, version, type, data, metadata, recorded_at FROM events_events WHERE position > @after ORDER BY position LIMIT 1000";
        Add(command, "after", after);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = 0;
        while (await reader.ReadAsync())
        {
            after = reader.GetInt64(0);
            // Materialise what an API would: the strings and a parse of the JSON data.
            _ = reader.GetString(1) + reader.GetString(2) + reader.GetString(4);
            using var data = JsonDocument.Parse(reader.GetString(5));
            rows++;
        }
        if (rows == 0)
        {
            break;
        }
        read += rows;
        latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }
    Report("raw-read", read, clock.Elapsed, latencies);
}
