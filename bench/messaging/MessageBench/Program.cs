// Messaging benchmark client. Each mode runs publishers and consumers at once for <seconds> and prints
// "RESULT <mode> <consumed/s> <published/s> <publish p50 ms> <publish p99 ms>", counting messages
// acknowledged by a consumer (end to end) and publishes acknowledged to the publisher (durable).
//   fundament <url> <token> <publishers> <consumers> <seconds> [batch=1]
//       POST /api/v1/topics/{topic}/messages (202 once durable), or .../messages/batch with <batch> messages per request;
//       consumers pull (max 100, wait 1 s) and ack the batch
//   rabbitmq  <amqp-uri> <publishers> <consumers> <seconds> [batch=1]
//       one channel per publisher with publisher confirms (each publish awaits its confirm; with <batch>, that many
//       publishes in flight and awaited together), persistent messages, a durable quorum queue; consumers with
//       manual acks (multiple) and prefetch 100
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

var mode = args[0];
switch (mode)
{
    case "fundament":
        await FundamentAsync(args[1], args[2], int.Parse(args[3]), int.Parse(args[4]), int.Parse(args[5]), args.Length > 6 ? int.Parse(args[6]) : 1);
        break;
    case "rabbitmq":
        await RabbitAsync(args[1], int.Parse(args[2]), int.Parse(args[3]), int.Parse(args[4]), args.Length > 5 ? int.Parse(args[5]) : 1);
        break;
    default:
        throw new ArgumentException($"unknown mode {mode}");
}

static string Body(long i) => $$"""{"orderId":"o-{{i}}","customer":"c-{{i % 97}}","total":{{i % 1000}}.5,"lines":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}]}""";

static void Report(string name, long consumed, long published, TimeSpan elapsed, List<double> latencies)
{
    latencies.Sort();
    double P(double q) => latencies.Count == 0 ? 0 : latencies[Math.Min(latencies.Count - 1, (int)(q * latencies.Count))];
    Console.WriteLine(FormattableString.Invariant($"RESULT {name} {consumed / elapsed.TotalSeconds:0} {published / elapsed.TotalSeconds:0} {P(0.5):0.00} {P(0.99):0.00}"));
}

static async Task FundamentAsync(string url, string token, int publishers, int consumers, int seconds, int batch)
{
    using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 256 };
    using var http = new HttpClient(handler) { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };
    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    var topic = $"bench-{Guid.NewGuid():N}"[..20];
    (await http.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions", new { group = "g" })).EnsureSuccessStatusCode();

    using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
    long published = 0, consumed = 0, next = 0;
    var latencies = new ConcurrentBag<double>();
    var clock = Stopwatch.StartNew();
    var publishing = Enumerable.Range(0, publishers).Select(_ => Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            if (batch == 1)
            {
                using var content = new StringContent($$"""{"body":{{Body(Interlocked.Increment(ref next))}}}""", Encoding.UTF8, "application/json");
                using var response = await http.PostAsync($"/api/v1/topics/{topic}/messages", content);
                response.EnsureSuccessStatusCode();
            }
            else
            {
                var bodies = string.Join(",", Enumerable.Range(0, batch).Select(_ => $$"""{"body":{{Body(Interlocked.Increment(ref next))}}}"""));
                using var content = new StringContent($$"""{"messages":[{{bodies}}]}""", Encoding.UTF8, "application/json");
                using var response = await http.PostAsync($"/api/v1/topics/{topic}/messages/batch", content);
                response.EnsureSuccessStatusCode();
            }
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            Interlocked.Add(ref published, batch);
        }
    })).ToList();
    var consuming = Enumerable.Range(0, consumers).Select(_ => Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            using var response = await http.PostAsync($"/api/v1/topics/{topic}/subscriptions/g/pull?max=100&wait=1", null);
            response.EnsureSuccessStatusCode();
            var messages = (await response.Content.ReadFromJsonAsync<JsonObject>())!["messages"]!.AsArray();
            if (messages.Count == 0)
            {
                continue;
            }
            var leaseIds = messages.Select(m => m!["leaseId"]!.GetValue<string>()).ToArray();
            (await http.PostAsJsonAsync($"/api/v1/topics/{topic}/subscriptions/g/ack", new { leaseIds })).EnsureSuccessStatusCode();
            if (!stop.IsCancellationRequested)
            {
                Interlocked.Add(ref consumed, messages.Count);
            }
        }
    })).ToList();
    await Task.WhenAll(publishing.Concat(consuming));
    Report($"fundament-p{publishers}-c{consumers}-b{batch}", consumed, published, clock.Elapsed, [.. latencies]);
    await http.DeleteAsync($"/api/v1/topics/{topic}/subscriptions/g");
}

static async Task RabbitAsync(string uri, int publishers, int consumers, int seconds, int batch)
{
    var factory = new ConnectionFactory { Uri = new Uri(uri) };
    await using var connection = await factory.CreateConnectionAsync();
    var queue = $"bench-{Guid.NewGuid():N}"[..20];
    await using (var setup = await connection.CreateChannelAsync())
    {
        await setup.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-queue-type"] = "quorum" });
    }
    using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
    long published = 0, consumed = 0, next = 0;
    var latencies = new ConcurrentBag<double>();
    var channels = new List<IChannel>();
    for (var c = 0; c < consumers; c++)
    {
        var channel = await connection.CreateChannelAsync();
        channels.Add(channel);
        await channel.BasicQosAsync(0, 100, false);
        var consumer = new AsyncEventingBasicConsumer(channel);
        var unacked = 0;
        consumer.ReceivedAsync += async (_, delivery) =>
        {
            // Acknowledged in batches of up to 100 (multiple), as the Fundament consumer acks a pulled batch.
            if (++unacked >= 50 || channel.IsClosed)
            {
                await channel.BasicAckAsync(delivery.DeliveryTag, multiple: true);
                if (!stop.IsCancellationRequested)
                {
                    Interlocked.Add(ref consumed, unacked);
                }
                unacked = 0;
            }
        };
        await channel.BasicConsumeAsync(queue, autoAck: false, consumer);
    }
    var clock = Stopwatch.StartNew();
    var publishing = Enumerable.Range(0, publishers).Select(_ => Task.Run(async () =>
    {
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        while (!stop.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            var confirms = new List<Task>(batch);
            for (var b = 0; b < batch; b++)
            {
                var properties = new BasicProperties { Persistent = true, ContentType = "application/json", MessageId = Guid.CreateVersion7().ToString() };
                confirms.Add(channel.BasicPublishAsync("", queue, mandatory: true, properties, Encoding.UTF8.GetBytes(Body(Interlocked.Increment(ref next)))).AsTask());
            }
            await Task.WhenAll(confirms);
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            Interlocked.Add(ref published, batch);
        }
    })).ToList();
    await Task.WhenAll(publishing);
    var elapsed = clock.Elapsed;
    Report($"rabbitmq-p{publishers}-c{consumers}-b{batch}", consumed, published, elapsed, [.. latencies]);
    try
    {
        foreach (var channel in channels)
        {
            await channel.CloseAsync();
        }
        await using var cleanup = await connection.CreateChannelAsync();
        await cleanup.QueueDeleteAsync(queue);
    }
    catch (Exception ex) when (ex is RabbitMQ.Client.Exceptions.OperationInterruptedException or RabbitMQ.Client.Exceptions.AlreadyClosedException)
    {
        // Cleanup only: the result is printed; a consumer's ack racing the close is not a benchmark failure.
    }
}
