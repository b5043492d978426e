using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Fundament.Cli;

/// <summary>
/// The server of the current (or named) context: sends requests with its credentials, refreshes an
/// access token that is about to expire (and saves the new pair), and turns problem documents into
/// one <see cref="CliException"/> line.
/// </summary>
internal sealed class FundApi : IDisposable
{
    private readonly string _name;
    private readonly CliContext _context;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _refresh = new(1, 1);

    private FundApi(string name, CliContext context)
    {
        _name = name;
        _context = context;
        _http = NewHttpClient(context.Server);
    }

    /// <summary>
    /// No redirects: a 307 would send the body (a password, a refresh token) wherever it points. Plain http is refused except on the
    /// loopback, so credentials never cross a network in the clear.
    /// </summary>
    public static HttpClient NewHttpClient(string server)
    {
        var uri = new Uri(server.TrimEnd('/') + "/");
        if (uri.Scheme == "http" && !uri.IsLoopback && Environment.GetEnvironmentVariable("FUND_ALLOW_HTTP") != "1")
        {
            throw new CliException(ExitCodes.Usage, $"{server} is plain http: tokens and passwords would cross the network unencrypted. Use https (or set FUND_ALLOW_HTTP=1 on a network you trust).");
        }
        var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = uri, Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("fund", typeof(FundApi).Assembly.GetName().Version?.ToString(3) ?? "0"));
        return http;
    }

    /// <summary>The absolute address of <paramref name="location"/> (a Location header) if it is on this server; throws otherwise.</summary>
    public Uri OnServer(Uri? requestUri, string location)
    {
        var resolved = new Uri(requestUri ?? _http.BaseAddress!, location);
        var server = _http.BaseAddress!;
        if (resolved.Scheme != server.Scheme || resolved.Host != server.Host || resolved.Port != server.Port)
        {
            throw new CliException(ExitCodes.Failed, $"the server answered with an address on another host ({resolved.GetLeftPart(UriPartial.Authority)}); refusing to follow it.");
        }
        return resolved;
    }

    public string ContextName => _name;

    public string Server => _context.Server;

    public static FundApi Open(string? contextName)
    {
        var config = CliConfig.Load();
        var name = contextName ?? config.Current;
        if (name is null || !config.Contexts.TryGetValue(name, out var context))
        {
            throw new CliException(ExitCodes.Unauthorized, name is null
                ? "not logged in: run `fund login --server URL` first."
                : $"there is no context '{name}': `fund context ls` lists them.");
        }
        return new FundApi(name, context);
    }

    public async Task<JsonNode?> GetAsync(string path, CancellationToken cancellationToken) =>
        await SendJsonAsync(HttpMethod.Get, path, null, cancellationToken);

    public async Task<JsonNode?> SendJsonAsync(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(() => new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body, options: CliJson.Options) }, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NoContent || response.Content.Headers.ContentLength == 0)
        {
            return null;
        }
        return await response.Content.ReadFromJsonAsync<JsonNode>(cancellationToken);
    }

    /// <summary>Sends with credentials (retrying once after a refresh on 401) and throws for anything but success.</summary>
    public async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> request, CancellationToken cancellationToken, bool throwOnError = true)
    {
        await RefreshIfDueAsync(TimeSpan.FromSeconds(30), cancellationToken);
        var response = await RawAsync(request(), cancellationToken);
        if (response.StatusCode == HttpStatusCode.Unauthorized && _context.RefreshToken is not null)
        {
            response.Dispose();
            await RefreshIfDueAsync(TimeSpan.MaxValue, cancellationToken);
            response = await RawAsync(request(), cancellationToken);
        }
        if (throwOnError && !response.IsSuccessStatusCode)
        {
            using (response)
            {
                throw await ProblemAsync(response, cancellationToken);
            }
        }
        return response;
    }

    private async Task<HttpResponseMessage> RawAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using (request)
        {
            request.Headers.Authorization = _context.ApiKey is { } key
                ? new AuthenticationHeaderValue("ApiKey", key)
                : _context.AccessToken is { } token ? new AuthenticationHeaderValue("Bearer", token) : null;
            try
            {
                return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            }
            catch (HttpRequestException ex)
            {
                throw new CliException(ExitCodes.Unreachable, $"{_context.Server} cannot be reached: {ex.Message}");
            }
        }
    }

    /// <summary>
    /// Refreshes the access token when it is about to expire (or was refused), once at a time: a refresh token is single-use, and a
    /// second use of it ends the whole session. Parallel uploads wait here, and another fund process's newer tokens (contexts.json,
    /// under a file lock) are taken instead of refreshing again.
    /// </summary>
    private async Task RefreshIfDueAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        if (_context.ApiKey is not null || _context.RefreshToken is null || !Due(within))
        {
            return;
        }
        var used = _context.AccessToken;
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (_context.AccessToken != used)
            {
                return;
            }
            using var fileLock = await CliConfig.LockAsync(cancellationToken);
            var config = CliConfig.Load();
            if (config.Contexts.TryGetValue(_name, out var stored) && stored.AccessToken != used && stored.RefreshToken is not null)
            {
                // Another fund process refreshed meanwhile: its tokens are the live ones.
                _context.AccessToken = stored.AccessToken;
                _context.RefreshToken = stored.RefreshToken;
                _context.ExpiresAt = stored.ExpiresAt;
                if (!Due(within))
                {
                    return;
                }
            }
            using var response = await RawAsync(new HttpRequestMessage(HttpMethod.Post, "api/v1/auth/refresh")
            {
                Content = JsonContent.Create(new Dictionary<string, string> { ["refresh_token"] = _context.RefreshToken! }),
            }, cancellationToken);
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.BadRequest)
            {
                throw new CliException(ExitCodes.Unauthorized, "the session has expired: run `fund login` again.");
            }
            if (!response.IsSuccessStatusCode)
            {
                throw await ProblemAsync(response, cancellationToken);
            }
            Store(_context, await ReadJsonAsync(response, cancellationToken));
            // Only this context's tokens change: whatever else was saved meanwhile stays.
            if (config.Contexts.TryGetValue(_name, out var current))
            {
                current.AccessToken = _context.AccessToken;
                current.RefreshToken = _context.RefreshToken;
                current.ExpiresAt = _context.ExpiresAt;
                config.Save();
            }
        }
        finally
        {
            _refresh.Release();
        }
    }

    private bool Due(TimeSpan within) =>
        within == TimeSpan.MaxValue || _context.ExpiresAt is not { } at || at - DateTimeOffset.UtcNow <= within;

    /// <summary>The body as JSON; a body that is not JSON (a proxy's error page) is one clear line.</summary>
    public static async Task<JsonNode> ReadJsonAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<JsonNode>(cancellationToken) ?? throw new CliException(ExitCodes.Failed, "the server answered with an empty body.");
        }
        catch (System.Text.Json.JsonException)
        {
            throw new CliException(ExitCodes.Failed, $"the server answered HTTP {(int)response.StatusCode} with something that is not JSON (a proxy in between?).");
        }
    }

    /// <summary>Keeps a token response in <paramref name="context"/>.</summary>
    public static void Store(CliContext context, JsonNode tokens)
    {
        context.AccessToken = tokens["access_token"]!.GetValue<string>();
        context.RefreshToken = tokens["refresh_token"]?.GetValue<string>() ?? context.RefreshToken;
        context.ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(tokens["expires_in"]?.GetValue<int>() ?? 300);
    }

    /// <summary>One line from a problem document (RFC 9457): title, detail, the field errors, the status.</summary>
    public static async Task<CliException> ProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        var exit = response.StatusCode switch
        {
            HttpStatusCode.Unauthorized => ExitCodes.Unauthorized,
            HttpStatusCode.Forbidden => ExitCodes.Unauthorized,
            HttpStatusCode.NotFound => ExitCodes.NotFound,
            _ => ExitCodes.Failed,
        };
        string? text = null;
        try
        {
            text = await response.Content.ReadAsStringAsync(cancellationToken);
            var problem = JsonNode.Parse(text);
            var parts = new List<string>();
            if (problem?["title"]?.GetValue<string>() is { } title)
            {
                parts.Add(title);
            }
            if (problem?["detail"]?.GetValue<string>() is { } detail)
            {
                parts.Add(detail);
            }
            if (problem?["errors"] is JsonObject errors)
            {
                parts.Add(string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", (e.Value as JsonArray ?? []).Select(m => m?.ToString()))}")));
            }
            if (parts.Count > 0)
            {
                return new CliException(exit, $"{string.Join(": ", parts)} (HTTP {status})");
            }
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
        }
        var reason = response.StatusCode switch
        {
            HttpStatusCode.Unauthorized => "not logged in, or the credentials were revoked: run `fund login`",
            HttpStatusCode.Forbidden => "the caller lacks the permission for this",
            _ => response.ReasonPhrase ?? "failed",
        };
        return new CliException(exit, $"{reason} (HTTP {status})");
    }

    public void Dispose()
    {
        _http.Dispose();
        _refresh.Dispose();
    }
}
