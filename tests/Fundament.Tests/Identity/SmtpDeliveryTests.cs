using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Identity;

/// <summary>Password reset mail travels over a real SMTP conversation when SMTP is configured.</summary>
public sealed class SmtpDeliveryTests
{
    [Fact]
    public async Task PasswordReset_IsMailedThroughSmtp()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var smtp = SmtpSink.Start();
        await using var factory = new ConfiguredFundamentFactory(
        [
            new("Fundament:Notifications:Smtp:Host", "127.0.0.1"),
            new("Fundament:Notifications:Smtp:Port", smtp.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("Fundament:Notifications:Smtp:Security", "none"),
            new("Fundament:Notifications:Smtp:From", "Fundament <no-reply@fundament.test>"),
            new("Fundament:Identity:PasswordResetUrl", "https://app.example.com/reset?token={token}"),
        ], captureNotifications: false);
        var (_, username) = await factory.CreateUserAsync(email: "grace@example.com");

        using var client = factory.CreateClient();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsJsonAsync("/api/v1/auth/password-reset", new { email = "grace@example.com" }, ct)).StatusCode);

        var message = await smtp.NextMessageAsync(ct);
        Assert.Contains("RCPT TO:<grace@example.com>", message.Envelope, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("MAIL FROM:<no-reply@fundament.test>", message.Envelope, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(username, message.Data, StringComparison.Ordinal);
        var token = System.Text.RegularExpressions.Regex.Match(message.Data.Replace("=\r\n", "", StringComparison.Ordinal), @"reset\?token=([A-Za-z0-9_\-]+)").Groups[1].Value;
        Assert.NotEmpty(token);
        Assert.Equal(HttpStatusCode.NoContent, (await client.PostAsJsonAsync("/api/v1/auth/password-reset/confirm", new { token, newPassword = "Mailed-Reset-Password-99" }, ct)).StatusCode);
        await factory.LoginAsync(username, "Mailed-Reset-Password-99");
    }

    /// <summary>A minimal SMTP receiver (RFC 5321 happy path) on loopback.</summary>
    private sealed class SmtpSink : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly System.Threading.Channels.Channel<(string Envelope, string Data)> _messages = System.Threading.Channels.Channel.CreateUnbounded<(string, string)>();
        private readonly CancellationTokenSource _stop = new();
        private Task? _loop;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public static SmtpSink Start()
        {
            var sink = new SmtpSink();
            sink._listener.Start();
            sink._loop = sink.AcceptAsync();
            return sink;
        }

        public async Task<(string Envelope, string Data)> NextMessageAsync(CancellationToken ct)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            return await _messages.Reader.ReadAsync(timeout.Token);
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                using var socket = await _listener.AcceptTcpClientAsync(_stop.Token);
                await using var stream = socket.GetStream();
                using var reader = new StreamReader(stream, Encoding.ASCII);
                await using var writer = new StreamWriter(stream, Encoding.ASCII) { NewLine = "\r\n", AutoFlush = true };
                var envelope = new StringBuilder();
                await writer.WriteLineAsync("220 sink ESMTP");
                while (await reader.ReadLineAsync(_stop.Token) is { } line)
                {
                    var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                    switch (verb)
                    {
                        case "EHLO":
                            await writer.WriteLineAsync("250-sink");
                            await writer.WriteLineAsync("250 8BITMIME");
                            break;
                        case "MAIL":
                        case "RCPT":
                            envelope.AppendLine(line);
                            await writer.WriteLineAsync("250 OK");
                            break;
                        case "DATA":
                            await writer.WriteLineAsync("354 end with .");
                            var data = new StringBuilder();
                            while (await reader.ReadLineAsync(_stop.Token) is { } dataLine && dataLine != ".")
                            {
                                data.Append(dataLine).Append("\r\n");
                            }
                            await writer.WriteLineAsync("250 queued");
                            await _messages.Writer.WriteAsync((envelope.ToString(), data.ToString()), _stop.Token);
                            break;
                        case "QUIT":
                            await writer.WriteLineAsync("221 bye");
                            goto done;
                        default:
                            await writer.WriteLineAsync("250 OK");
                            break;
                    }
                }
            done:;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await (_loop ?? Task.CompletedTask);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
            _stop.Dispose();
        }
    }
}
