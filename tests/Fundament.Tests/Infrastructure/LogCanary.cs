using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

[assembly: AssemblyFixture(typeof(Fundament.Tests.Infrastructure.LogCanary))]

namespace Fundament.Tests.Infrastructure;

/// <summary>
/// Watches every log line every test server writes, at Debug level and above, for credentials:
/// anything shaped like one (a JWT, an API key, a Standard Webhooks secret, a Slack webhook path,
/// an Authorization value) and every secret that crossed the API during the run (passwords,
/// client secrets, tokens, vault values: <see cref="SecretHarvester"/> collects them from the
/// requests and answers). The whole run fails at the end if one line held one.
/// </summary>
public sealed partial class LogCanary : IAsyncDisposable
{
    private const int MinimumSecretLength = 10;
    private const int IndexLength = 8;

    private static readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> Secrets = new(StringComparer.Ordinal);
    private static readonly ConcurrentQueue<string> Violations = new();

    /// <summary>The last lines logged, re-checked when a secret is learnt from an answer.</summary>
    private static readonly ConcurrentQueue<(string Category, LogLevel Level, string Text)> Recent = new();

    private const int RecentLines = 2000;
    private static long _lines;

    private static string ReportFile => Path.Combine(AppContext.BaseDirectory, "log-canary-violations.txt");

    public LogCanary() => File.Delete(ReportFile);

    /// <summary>How many lines were inspected so far (the run's report says it, so a silent canary is noticed).</summary>
    public static long LinesInspected => Interlocked.Read(ref _lines);

    /// <summary>The violations found so far (each with the offending line).</summary>
    public static IReadOnlyList<string> ViolationsSoFar => Violations.ToArray();

    /// <summary>
    /// Remembers a value that must never be logged, and checks the lines logged just before (a
    /// secret an answer hands out is learnt after the request that may have logged it).
    /// Low-entropy values ("aaaaaaaaaaaaaaaa") are not secrets anyone would recognise in a line.
    /// </summary>
    public static void Register(string? secret)
    {
        if (secret is null || secret.Length < MinimumSecretLength || secret.Distinct().Count() < 6)
        {
            return;
        }
        if (Secrets.GetOrAdd(secret[..IndexLength], _ => new(StringComparer.Ordinal)).TryAdd(secret, 0))
        {
            foreach (var (category, level, text) in Recent.ToArray())
            {
                if (text.Contains(secret, StringComparison.Ordinal))
                {
                    Violations.Enqueue($"[{level}] {category}: a secret that crossed the API ({secret[..4]}…, {secret.Length} chars), logged before it was known\n    {Truncate(text)}");
                }
            }
        }
    }

    /// <summary>What in <paramref name="line"/> is a credential, or null when nothing is.</summary>
    public static string? Inspect(string line)
    {
        var shaped = CredentialShape().Match(line);
        if (shaped.Success)
        {
            return $"something shaped like a credential ({Describe(shaped)})";
        }
        var lookup = Secrets.GetAlternateLookup<ReadOnlySpan<char>>();
        var span = line.AsSpan();
        for (var i = 0; i + MinimumSecretLength <= span.Length; i++)
        {
            if (lookup.TryGetValue(span.Slice(i, IndexLength), out var candidates))
            {
                foreach (var secret in candidates.Keys)
                {
                    if (span[i..].StartsWith(secret, StringComparison.Ordinal))
                    {
                        return $"a secret that crossed the API ({secret[..4]}…, {secret.Length} chars)";
                    }
                }
            }
        }
        return null;
    }

    private static string Describe(Match match) =>
        match.Groups["jwt"].Success ? "JWT" :
        match.Groups["apikey"].Success ? "API key" :
        match.Groups["whsec"].Success ? "webhook secret" :
        match.Groups["slack"].Success ? "Slack webhook path" : "Authorization value";

    internal static void Check(string category, LogLevel level, string text)
    {
        Interlocked.Increment(ref _lines);
        Recent.Enqueue((category, level, text));
        while (Recent.Count > RecentLines && Recent.TryDequeue(out _))
        {
        }
        if (Inspect(text) is { } what)
        {
            Violations.Enqueue($"[{level}] {category}: {what}\n    {Truncate(text)}");
        }
    }

    private static string Truncate(string text) => text.Length <= 400 ? text : text[..400] + "…";

    public ValueTask DisposeAsync()
    {
        if (!Violations.IsEmpty)
        {
            var file = ReportFile;
            File.WriteAllText(file, string.Join("\n", Violations));
            throw new InvalidOperationException($"{Violations.Count} server log line(s) held a credential (all of them in {file}):\n" + string.Join("\n", Violations.Take(20)));
        }
        return ValueTask.CompletedTask;
    }

    [GeneratedRegex("""
        (?<jwt>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,})
        |(?<apikey>fk_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{16,})
        |(?<whsec>whsec_[A-Za-z0-9+/=]{16,})
        |(?<slack>/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{8,})
        |(?<authz>(?i:bearer|apikey|basic)\s+(?=[A-Za-z._~+/-]*[0-9])[A-Za-z0-9._~+/-]{20,}={0,2}(?![A-Za-z0-9=]))
        """, RegexOptions.IgnorePatternWhitespace | RegexOptions.ExplicitCapture)]
    private static partial Regex CredentialShape();
}

/// <summary>Feeds every log line of one test server, Debug level and above, to the <see cref="LogCanary"/>.</summary>
[ProviderAlias("LogCanary")]
public sealed class LogCanaryProvider : ILoggerProvider, ISupportExternalScope
{
    private IExternalScopeProvider? _scopes;

    public ILogger CreateLogger(string categoryName) => new Canary(categoryName, this);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private sealed class Canary(string category, LogCanaryProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => provider._scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }
            var text = new StringBuilder(formatter(state, exception));
            // What a structured sink would keep: every property, not just the rendered message.
            if (state is IEnumerable<KeyValuePair<string, object?>> properties)
            {
                foreach (var (key, value) in properties)
                {
                    text.Append(' ').Append(key).Append('=').Append(value);
                }
            }
            if (exception is not null)
            {
                text.Append('\n').Append(exception);
            }
            provider._scopes?.ForEachScope((scope, builder) => builder.Append(" => ").Append(scope), text);
            LogCanary.Check(category, logLevel, text.ToString());
        }
    }
}

/// <summary>
/// Collects the secrets that cross a test server's API, so the <see cref="LogCanary"/> knows them:
/// credentials in Authorization headers, password and secret fields of JSON and form requests, and
/// the tokens, keys and secrets answers hand out. It tees the bodies as they stream, so it changes
/// neither buffering nor limits.
/// </summary>
public sealed class SecretHarvester : IStartupFilter
{
    private const int MaxCaptured = 64 * 1024;

    // Field names only secrets use: "key" and "code" are left out, config keys and problem codes share them.
    private static readonly HashSet<string> SecretFields = new(StringComparer.OrdinalIgnoreCase)
    {
        "password", "newPassword", "currentPassword", "secret", "clientSecret", "client_secret",
        "access_token", "refresh_token", "id_token", "token",
    };

    private static readonly HashSet<string> SecretFormFields = new(StringComparer.OrdinalIgnoreCase)
    {
        "password", "client_secret", "refresh_token", "code", "code_verifier", "token", "client_assertion",
    };

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(async (context, nextMiddleware) =>
        {
            var authorization = context.Request.Headers.Authorization.ToString();
            if (authorization.IndexOf(' ', StringComparison.Ordinal) is var space and > 0)
            {
                LogCanary.Register(authorization[(space + 1)..].Trim());
            }
            var isVault = context.Request.Path.StartsWithSegments("/api/v1/secrets", StringComparison.Ordinal);
            // A small JSON or form body is learnt before the request runs, so a line it logs is caught at once.
            if (context.Request.ContentLength is > 0 and <= MaxCaptured && IsHarvested(context.Request.ContentType))
            {
                context.Request.EnableBuffering();
                using var copy = new MemoryStream();
                await context.Request.Body.CopyToAsync(copy, context.RequestAborted);
                context.Request.Body.Position = 0;
                Harvest(context.Request.ContentType, copy.ToArray(), isVault);
            }
            var requestTee = new TeeStream(context.Request.Body, MaxCaptured);
            context.Request.Body = requestTee;
            var responseTee = new TeeStream(context.Response.Body, MaxCaptured);
            context.Response.Body = responseTee;
            try
            {
                await nextMiddleware(context);
            }
            finally
            {
                Harvest(context.Request.ContentType, requestTee.Captured, isVault);
                Harvest(context.Response.ContentType, responseTee.Captured, isVault);
            }
        });
        next(app);
    };

    private static bool IsHarvested(string? contentType) =>
        contentType is not null && (contentType.Contains("json", StringComparison.OrdinalIgnoreCase)
            || contentType.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase));

    private static void Harvest(string? contentType, byte[] body, bool isVault)
    {
        if (body.Length == 0 || contentType is null)
        {
            return;
        }
        if (contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                using var document = JsonDocument.Parse(body);
                Walk(document.RootElement, null, isVault);
            }
            catch (JsonException)
            {
                // Truncated or not JSON after all: nothing to learn.
            }
        }
        else if (contentType.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
        {
            foreach (var (key, values) in Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(Encoding.UTF8.GetString(body)))
            {
                if (SecretFormFields.Contains(key))
                {
                    foreach (var value in values)
                    {
                        LogCanary.Register(value);
                    }
                }
            }
        }
    }

    private static void Walk(JsonElement element, string? name, bool isVault)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    Walk(property.Value, property.Name, isVault);
                }
                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    Walk(item, name, isVault);
                }
                break;
            case JsonValueKind.String when name is not null && (SecretFields.Contains(name) || (isVault && name == "value")):
                LogCanary.Register(element.GetString());
                break;
        }
    }

    /// <summary>Passes reads and writes through and keeps a copy of the first bytes.</summary>
    private sealed class TeeStream(Stream inner, int limit) : Stream
    {
        private readonly MemoryStream _copy = new();

        public byte[] Captured => _copy.ToArray();

        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => false;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        private void Keep(ReadOnlySpan<byte> bytes)
        {
            var room = limit - (int)_copy.Length;
            if (room > 0)
            {
                _copy.Write(bytes[..Math.Min(room, bytes.Length)]);
            }
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = inner.Read(buffer, offset, count);
            Keep(buffer.AsSpan(offset, read));
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            Keep(buffer.Span[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count)
        {
            Keep(buffer.AsSpan(offset, count));
            inner.Write(buffer, offset, count);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Keep(buffer.Span);
            await inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
