using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fundament.Gpu.Placement;

namespace Fundament.Gpu.Providers;

/// <summary>The HTTP every adapter shares: bearer key, JSON in and out, errors classified by the adapter.</summary>
internal static class ProviderHttp
{
    /// <summary>Larger answers are cut here: no provider's listing or error needs more, and a broken proxy cannot fill memory.</summary>
    private const int MaxBody = 4 << 20;

    /// <summary>The longest provider message kept in an exception (and so in the decision log).</summary>
    public static string Trim(string text) => text.Length > 300 ? text[..300] + "…" : text;

    public static async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(
        HttpClient http, GpuProviderConnection connection, HttpMethod method, string path, JsonNode? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(connection.BaseUrl, path));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await connection.ApiKey(cancellationToken));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json");
        }
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new GpuLaunchException(LaunchFailure.Transient, $"the provider cannot be reached: {ex.Message}", ex);
        }
        catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // A read that timed out is safe to try again; a launch that timed out may have happened.
            throw new GpuLaunchException(method == HttpMethod.Get ? LaunchFailure.Transient : LaunchFailure.Unknown, "the provider did not answer in time", ex);
        }
        using (response)
        {
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[MaxBody];
            var read = 0;
            int n;
            while (read < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(read), cancellationToken)) > 0)
            {
                read += n;
            }
            var text = System.Text.Encoding.UTF8.GetString(buffer, 0, read);
            JsonNode? parsed = null;
            if (text.Length > 0)
            {
                try
                {
                    parsed = JsonNode.Parse(text);
                }
                catch (JsonException)
                {
                    // An HTML error page from a proxy: kept as a message, in an object like the providers' own errors.
                    parsed = new JsonObject { ["message"] = Trim(text) };
                }
            }
            // Anything but an object (a bare string or number) is treated as a message too, so indexers never throw.
            return (response.StatusCode, parsed is null or JsonObject ? parsed : new JsonObject { ["message"] = Trim(parsed.ToJsonString()) });
        }
    }

    /// <summary>The classification every provider shares for a status code; adapters look at their error codes first.</summary>
    public static LaunchFailure ByStatus(HttpStatusCode status) => status switch
    {
        HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => LaunchFailure.Auth,
        HttpStatusCode.TooManyRequests => LaunchFailure.RateLimited,
        HttpStatusCode.PaymentRequired => LaunchFailure.Quota,
        >= HttpStatusCode.InternalServerError => LaunchFailure.Transient,
        _ => LaunchFailure.Transient,
    };
}
