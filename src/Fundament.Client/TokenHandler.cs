using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Serialization;

namespace Fundament.Client;

/// <summary>
/// Adds a client-credentials access token to every request to Fundament, fetching a new one a
/// minute before the current one expires (or at once after a 401).
/// </summary>
internal sealed class TokenHandler(FundamentClientOptions options, TimeProvider time) : DelegatingHandler
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _token;
    private DateTimeOffset _expires;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(force: false, cancellationToken).ConfigureAwait(false));
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized)
        {
            // Revoked, or signed by a key Fundament no longer has: never reuse it.
            _token = null;
        }
        if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized && request.Content is null)
        {
            response.Dispose();
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(force: true, cancellationToken).ConfigureAwait(false));
            response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        return response;
    }

    private async Task<string> TokenAsync(bool force, CancellationToken cancellationToken)
    {
        if (!force && _token is { } cached && time.GetUtcNow() < _expires)
        {
            return cached;
        }
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!force && _token is { } again && time.GetUtcNow() < _expires)
            {
                return again;
            }
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.Url!, "/oauth2/token"))
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["grant_type"] = "client_credentials",
                    ["client_id"] = options.ClientId!,
                    ["client_secret"] = options.ClientSecret!,
                }),
            };
            using var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new HttpRequestException($"Fundament refused the client credentials of '{options.ClientId}' ({(int)response.StatusCode}).", null, response.StatusCode);
            }
            var token = await response.Content.ReadFromJsonAsync<TokenAnswer>(cancellationToken).ConfigureAwait(false)
                ?? throw new HttpRequestException("Fundament answered the token request without a token.");
            _token = token.AccessToken;
            _expires = time.GetUtcNow().AddSeconds(Math.Max(30, token.ExpiresIn - 60));
            return _token;
        }
        finally
        {
            _gate.Release();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _gate.Dispose();
        }
        base.Dispose(disposing);
    }

    private sealed record TokenAnswer(
        [property: JsonPropertyName("access_token")] string AccessToken,
        [property: JsonPropertyName("expires_in")] int ExpiresIn);
}
