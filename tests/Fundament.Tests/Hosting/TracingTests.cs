using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Fundament.Tests.Hosting;

/// <summary>
/// Tracing as an operator sees it in their collector: a real <c>fundament</c> process exports over
/// OTLP (HTTP/protobuf) to a receiver in this test. One request through the gateway to an upstream,
/// which calls back into Fundament's API, is one trace.
/// </summary>
public sealed class TracingTests : IAsyncDisposable
{
    private const string Password = "Tracing-Test-Password-1";
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));
    private readonly ConcurrentBag<Span> _spans = [];
    private WebApplication? _receiver;
    private WebApplication? _upstream;
    private System.Diagnostics.Process? _server;

    public async ValueTask DisposeAsync()
    {
        if (_server is { HasExited: false })
        {
            _server.Kill(entireProcessTree: true);
            await _server.WaitForExitAsync();
        }
        _server?.Dispose();
        if (_receiver is not null)
        {
            await _receiver.DisposeAsync();
        }
        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }
        if (Directory.Exists(_dataDir))
        {
            Directory.Delete(_dataDir, true);
        }
    }

    [Fact]
    public async Task ARequestThroughTheGateway_ToAnUpstream_AndBackIntoTheApi_IsOneTrace()
    {
        int receiverPort = TestPorts.Next(), upstreamPort = TestPorts.Next(), apiPort = TestPorts.Next(), gatewayPort = TestPorts.Next();

        // The OTLP receiver: collects every span of every export.
        var receiver = WebApplication.CreateSlimBuilder();
        receiver.WebHost.UseUrls($"http://127.0.0.1:{receiverPort}");
        _receiver = receiver.Build();
        _receiver.MapPost("/v1/traces", async (HttpRequest request) =>
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer);
            foreach (var span in Otlp.Spans(buffer.ToArray()))
            {
                _spans.Add(span);
            }
            return Results.Ok();
        });
        _receiver.MapPost("/v1/metrics", () => Results.Ok());
        await _receiver.StartAsync(_ct);

        // The upstream: answers a gateway request by calling Fundament's API with the caller's token, passing the trace on.
        var upstream = WebApplication.CreateSlimBuilder();
        upstream.WebHost.UseUrls($"http://127.0.0.1:{upstreamPort}");
        _upstream = upstream.Build();
        _upstream.MapGet("/traced/{**rest}", async (HttpRequest request) =>
        {
            var status = await RawGetAsync(apiPort, "/api/v1/me",
                ("traceparent", request.Headers["traceparent"].ToString()), ("authorization", request.Headers["x-test-token"].ToString()));
            return Results.Text($"api answered {status}");
        });
        await _upstream.StartAsync(_ct);

        _server = ChildProcess.StartDotnet(Path.Combine(AppContext.BaseDirectory, "fundament.dll"),
        [
            new("Fundament__DataDir", _dataDir),
            new("Fundament__Identity__BootstrapAdminPassword", Password),
            new("Fundament__Identity__PasswordHashIterations", "10000"),
            new("Fundament__Gateway__Urls", $"http://127.0.0.1:{gatewayPort}"),
            new("OTEL_EXPORTER_OTLP_ENDPOINT", $"http://127.0.0.1:{receiverPort}"),
            new("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            new("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ], ["--urls", $"http://127.0.0.1:{apiPort}"]);
        using var admin = await ChildProcess.SignedInAsync(apiPort, Password, _ct);
        var token = admin.DefaultRequestHeaders.Authorization!.ToString();
        var registered = await admin.PostAsJsonAsync("/api/v1/registry/instances",
            new { service = "traced", address = "127.0.0.1", port = upstreamPort, routes = new object[] { new { path = "/traced/{**rest}", auth = "authenticated" } } }, _ct);
        Assert.True(registered.StatusCode == HttpStatusCode.Created, await registered.Content.ReadAsStringAsync(_ct));

        // Raw HTTP for the test's own calls: this process may be traced (other tests' hosts listen), and HttpClient
        // would then send trace context of its own, making the test process part of the trace.
        var answered = "";
        for (var i = 0; i < 100 && !answered.Contains("api answered 200", StringComparison.Ordinal); i++)
        {
            answered = await RawGetBodyAsync(gatewayPort, "/traced/hello", ("authorization", token), ("x-test-token", token));
            if (!answered.Contains("api answered 200", StringComparison.Ordinal))
            {
                await Task.Delay(100, _ct);
            }
        }
        Assert.Contains("api answered 200", answered, StringComparison.Ordinal);

        // The gateway's server span is the root; the API's server span for /api/v1/me is in the same trace,
        // a descendant of it through the gateway's outgoing call.
        Span? api = null;
        for (var i = 0; i < 100 && api is null; i++)
        {
            await Task.Delay(100, _ct);
            api = _spans.FirstOrDefault(s => s.Name.Contains("/api/v1/me", StringComparison.Ordinal) && s.Kind == 2);
        }
        Assert.NotNull(api);
        // The gateway's server span ends after the API's (it waits for the upstream) and comes in a later export.
        for (var i = 0; i < 100 && !_spans.Any(s => s.TraceId == api.TraceId && s.ParentSpanId.Length == 0); i++)
        {
            await Task.Delay(100, _ct);
        }
        var trace = _spans.Where(s => s.TraceId == api.TraceId).ToList();
        var root = Assert.Single(trace, s => s.ParentSpanId.Length == 0);
        Assert.Equal(2, root.Kind);
        Assert.Contains("/traced/", root.Name, StringComparison.Ordinal);
        var ancestor = api;
        var hops = 0;
        while (ancestor.ParentSpanId.Length > 0 && trace.FirstOrDefault(s => s.SpanId == ancestor.ParentSpanId) is { } parent)
        {
            ancestor = parent;
            hops++;
        }
        Assert.Same(root, ancestor);
        // At least the gateway's outgoing call sits between the two server spans.
        Assert.True(hops >= 2, $"the API span hangs {hops} hop(s) under the gateway's root");
        Assert.Contains(trace, s => s.Kind == 3 && s.ParentSpanId.Length > 0);
    }

    private static async Task<int> RawGetAsync(int port, string path, params (string Name, string Value)[] headers)
    {
        var answer = await RawGetBodyAsync(port, path, headers);
        return int.Parse(answer.Split(' ', 3)[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A GET over a bare socket: exactly the given headers, no trace context added by this process.</summary>
    private static async Task<string> RawGetBodyAsync(int port, string path, params (string Name, string Value)[] headers)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        await using var stream = tcp.GetStream();
        var request = new System.Text.StringBuilder($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
        foreach (var (name, value) in headers.Where(h => h.Value.Length > 0))
        {
            request.Append(name).Append(": ").Append(value).Append("\r\n");
        }
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request.Append("\r\n").ToString()));
        using var reader = new StreamReader(stream);
        return await reader.ReadToEndAsync();
    }

    private sealed record Span(string TraceId, string SpanId, string ParentSpanId, string Name, int Kind);

    /// <summary>Just enough of OTLP's protobuf to read spans: ExportTraceServiceRequest → ResourceSpans(1) → ScopeSpans(2) → Span(2).</summary>
    private static class Otlp
    {
        public static IEnumerable<Span> Spans(byte[] request)
        {
            foreach (var resource in Fields(request).Where(f => f.Number == 1 && f.Value is not null))
            {
                foreach (var scope in Fields(resource.Value!).Where(f => f.Number == 2 && f.Value is not null))
                {
                    foreach (var span in Fields(scope.Value!).Where(f => f.Number == 2 && f.Value is not null))
                    {
                        var fields = Fields(span.Value!).ToList();
                        string Hex(int n) => Convert.ToHexStringLower(fields.FirstOrDefault(f => f.Number == n).Value ?? []);
                        var name = System.Text.Encoding.UTF8.GetString(fields.FirstOrDefault(f => f.Number == 5).Value ?? []);
                        var kind = (int)(fields.FirstOrDefault(f => f.Number == 6).Varint);
                        yield return new Span(Hex(1), Hex(2), Hex(4), name, kind);
                    }
                }
            }
        }

        private static IEnumerable<(int Number, byte[]? Value, ulong Varint)> Fields(byte[] message)
        {
            var position = 0;
            while (position < message.Length)
            {
                var key = Varint(message, ref position);
                var number = (int)(key >> 3);
                switch (key & 7)
                {
                    case 0:
                        yield return (number, null, Varint(message, ref position));
                        break;
                    case 1:
                        position += 8;
                        break;
                    case 2:
                        var length = (int)Varint(message, ref position);
                        yield return (number, message[position..(position + length)], 0);
                        position += length;
                        break;
                    case 5:
                        position += 4;
                        break;
                    default:
                        throw new InvalidDataException($"wire type {key & 7}");
                }
            }
        }

        private static ulong Varint(byte[] message, ref int position)
        {
            ulong value = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = message[position++];
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return value;
                }
            }
        }
    }
}
