using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fundament.Gpu.Placement;

namespace Fundament.Gpu.Providers;

/// <summary>The HTTP every adapter shares: bearer key, JSON in and out, errors classified by the adapter.</summary>
internal static class ProviderHttp
{
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
            throw new GpuLaunchException(LaunchFailure.Transient, "the provider did not answer in time", ex);
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            JsonNode? parsed = null;
            if (text.Length > 0)
            {
                try
                {
                    parsed = JsonNode.Parse(text);
                }
                catch (JsonException)
                {
                    parsed = JsonValue.Create(text.Length > 300 ? text[..300] : text);
                }
            }
            return (response.StatusCode, parsed);
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
