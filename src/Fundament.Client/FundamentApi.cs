using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Fundament.Client;

/// <summary>The few Fundament endpoints a service uses, over one authenticated HttpClient.</summary>
internal sealed class FundamentApi : IDisposable
{
    public const string IndexHeader = "X-Fundament-Index";

    /// <summary>Deadline of a call that does not wait for changes; a watch gets its wait plus this.</summary>
    internal static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);

    private readonly HttpClient _http;

    /// <summary>The authenticated client, for the event store's calls (<see cref="Events.EventStoreClient"/>), which set their own deadlines.</summary>
    internal HttpClient Http => _http;

    public FundamentApi(FundamentClientOptions options, TimeProvider time)
    {
        var handler = new TokenHandler(options, time)
        {
            InnerHandler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2), ConnectTimeout = TimeSpan.FromSeconds(10) },
        };
        // Blocking watches hold requests for minutes; each call sets its own deadline instead.
        _http = new HttpClient(handler) { BaseAddress = options.Url, Timeout = Timeout.InfiniteTimeSpan };
    }

    public async Task<JsonElement> RegisterAsync(object body, CancellationToken cancellationToken)
    {
        using var deadline = Deadline(CallTimeout, cancellationToken);
        cancellationToken = deadline.Token;
        using var response = await _http.PostAsJsonAsync("/api/v1/registry/instances", body, cancellationToken).ConfigureAwait(false);
        await EnsureAsync(response, "register", cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken).ConfigureAwait(false);
    }

    public async Task HeartbeatAsync(string instanceId, CancellationToken cancellationToken)
    {
        using var deadline = Deadline(CallTimeout, cancellationToken);
        cancellationToken = deadline.Token;
        using var response = await _http.PutAsync($"/api/v1/registry/instances/{Uri.EscapeDataString(instanceId)}/heartbeat", null, cancellationToken).ConfigureAwait(false);
        await EnsureAsync(response, "heartbeat", cancellationToken).ConfigureAwait(false);
    }

    public async Task DeregisterAsync(string instanceId, CancellationToken cancellationToken)
    {
        using var deadline = Deadline(CallTimeout, cancellationToken);
        cancellationToken = deadline.Token;
        using var response = await _http.DeleteAsync($"/api/v1/registry/instances/{Uri.EscapeDataString(instanceId)}", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.NotFound)
        {
            await EnsureAsync(response, "deregister", cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<(long Index, Dictionary<string, JsonElement> Values)> ResolvedAsync(string service, string environment, long? index, TimeSpan wait, CancellationToken cancellationToken)
    {
        using var deadline = Deadline(index is null ? CallTimeout : wait + CallTimeout, cancellationToken);
        cancellationToken = deadline.Token;
        var url = $"/api/v1/config/resolved?service={Uri.EscapeDataString(service)}&environment={Uri.EscapeDataString(environment)}{Watch(index, wait)}";
        using var response = await _http.GetAsync(url, cancellationToken).ConfigureAwait(false);
        await EnsureAsync(response, "read configuration", cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadFromJsonAsync<ResolvedAnswer>(cancellationToken).ConfigureAwait(false);
        return (body?.Index ?? 0, body?.Values ?? []);
    }

    public async Task<JsonElement?> SecretAsync(string path, CancellationToken cancellationToken)
    {
        using var deadline = Deadline(CallTimeout, cancellationToken);
        cancellationToken = deadline.Token;
        using var response = await _http.GetAsync($"/api/v1/secrets/{path}", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        await EnsureAsync(response, $"read secret '{path}'", cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken).ConfigureAwait(false);
        return body.GetProperty("value").Clone();
    }

    public async Task<(long Index, List<InstanceAnswer> Instances)> HealthyInstancesAsync(string service, long? index, TimeSpan wait, CancellationToken cancellationToken)
    {
        using var deadline = Deadline(index is null ? CallTimeout : wait + CallTimeout, cancellationToken);
        cancellationToken = deadline.Token;
        var url = $"/api/v1/registry/services/{Uri.EscapeDataString(service)}/instances?healthy=true&limit={MaxPage}{Watch(index, wait)}";
        using var response = await _http.GetAsync(url, cancellationToken).ConfigureAwait(false);
        await EnsureAsync(response, $"discover '{service}'", cancellationToken).ConfigureAwait(false);
        var index2 = response.Headers.TryGetValues(IndexHeader, out var values) && long.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : 0;
        var instances = await response.Content.ReadFromJsonAsync<List<InstanceAnswer>>(cancellationToken).ConfigureAwait(false) ?? [];
        // More instances than a page: the rest at once, through the server's next links (which do not wait).
        for (var next = NextLink(response); next is not null;)
        {
            using var page = await _http.GetAsync(next, cancellationToken).ConfigureAwait(false);
            await EnsureAsync(page, $"discover '{service}'", cancellationToken).ConfigureAwait(false);
            instances.AddRange(await page.Content.ReadFromJsonAsync<List<InstanceAnswer>>(cancellationToken).ConfigureAwait(false) ?? []);
            next = NextLink(page);
        }
        return (index2, instances);
    }

    /// <summary>The largest page the server's lists give.</summary>
    private const int MaxPage = 500;

    /// <summary>The relative URL of <c>Link: &lt;…&gt;; rel="next"</c>, or null on the last page.</summary>
    private static string? NextLink(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Link", out var links))
        {
            return null;
        }
        foreach (var link in links.SelectMany(l => l.Split(',')))
        {
            var open = link.IndexOf('<', StringComparison.Ordinal);
            var close = link.IndexOf('>', StringComparison.Ordinal);
            if (open >= 0 && close > open && link[(close + 1)..].Contains("rel=\"next\"", StringComparison.Ordinal))
            {
                return link[(open + 1)..close].Trim();
            }
        }
        return null;
    }

    internal static CancellationTokenSource Deadline(TimeSpan after, CancellationToken cancellationToken)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        source.CancelAfter(after);
        return source;
    }

    private static string Watch(long? index, TimeSpan wait) =>
        index is { } i ? $"&index={i.ToString(CultureInfo.InvariantCulture)}&wait={(int)wait.TotalSeconds}s" : "";

    internal static async Task EnsureAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        if (!response.IsSuccessStatusCode)
        {
            var detail = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw new HttpRequestException($"Fundament refused to {what}: {(int)response.StatusCode} {(detail.Length > 300 ? detail[..300] : detail)}", null, response.StatusCode);
        }
    }

    public void Dispose() => _http.Dispose();

    internal sealed record ResolvedAnswer(long Index, Dictionary<string, JsonElement>? Values);

    internal sealed record InstanceAnswer(string InstanceId, string Address, int Port, string Scheme, string Status);
}
