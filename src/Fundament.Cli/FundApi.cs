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
    private readonly CliConfig _config;
    private readonly CliContext _context;
    private readonly HttpClient _http;

    private FundApi(CliConfig config, CliContext context)
    {
        _config = config;
        _context = context;
        _http = new HttpClient { BaseAddress = new Uri(context.Server.TrimEnd('/') + "/"), Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("fund", typeof(FundApi).Assembly.GetName().Version?.ToString(3) ?? "0"));
    }

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
        return new FundApi(config, context);
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

    private async Task RefreshIfDueAsync(TimeSpan within, CancellationToken cancellationToken)
    {
        if (_context.ApiKey is not null || _context.RefreshToken is null
            || (within != TimeSpan.MaxValue && _context.ExpiresAt is { } at && at - DateTimeOffset.UtcNow > within))
        {
            return;
        }
        using var response = await RawAsync(new HttpRequestMessage(HttpMethod.Post, "api/v1/auth/refresh")
        {
            Content = JsonContent.Create(new Dictionary<string, string> { ["refresh_token"] = _context.RefreshToken }),
        }, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new CliException(ExitCodes.Unauthorized, "the session has expired: run `fund login` again.");
        }
        Store(_context, (await response.Content.ReadFromJsonAsync<JsonNode>(cancellationToken))!);
        _config.Save();
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
                parts.Add(string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value!.AsArray().Select(m => m!.GetValue<string>()))}")));
            }
            if (parts.Count > 0)
            {
                return new CliException(exit, $"{string.Join(": ", parts)} (HTTP {status})");
            }
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException)
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

    public void Dispose() => _http.Dispose();
}
