using System.Diagnostics;
using System.Globalization;
using Fundament.Registry.Instances;

namespace Fundament.Registry.Monitoring;

/// <summary>
/// One active HTTP check, Consul's way: 2xx is passing, 429 is warning, anything else (or no
/// answer within the timeout) is critical. Redirects are not followed. The connection passes the
/// egress policy for upstreams (see <see cref="Fundament.Core.Egress.EgressGuard"/>), and the output
/// records only the status class and a short reason of Fundament's own wording: nothing the
/// probed target wrote (reason phrase, headers, body) reaches the instance's history, so the
/// check cannot be used to read what answers at an address.
/// </summary>
internal sealed class HttpChecker(IHttpClientFactory clients, TimeProvider time)
{
    public const string ClientName = "fundament-registry-checks";

    public async Task<(string Status, string Output, TimeSpan Duration)> CheckAsync(CheckWork work, CancellationToken cancellationToken)
    {
        var host = work.Address.Contains(':', StringComparison.Ordinal) && !work.Address.StartsWith('[') ? $"[{work.Address}]" : work.Address;
        var url = $"{work.Scheme}://{host}:{work.Port.ToString(CultureInfo.InvariantCulture)}{work.CheckPath}";
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(work.CheckTimeoutMs), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var client = clients.CreateClient(ClientName);
            using var response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            var code = (int)response.StatusCode;
            var status = code is >= 200 and < 300 ? InstanceStatus.Passing : code == 429 ? InstanceStatus.Warning : InstanceStatus.Critical;
            return (status, $"HTTP GET {work.CheckPath}: {code / 100}xx", Stopwatch.GetElapsedTime(started));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (InstanceStatus.Critical, $"HTTP GET {work.CheckPath}: no answer within {work.CheckTimeoutMs} ms", Stopwatch.GetElapsedTime(started));
        }
        catch (HttpRequestException ex) when (Fundament.Core.Egress.EgressDeniedException.IsDenial(ex, out _))
        {
            return (InstanceStatus.Critical, $"HTTP GET {work.CheckPath}: refused by the egress policy", Stopwatch.GetElapsedTime(started));
        }
        catch (HttpRequestException ex)
        {
            return (InstanceStatus.Critical, $"HTTP GET {work.CheckPath}: {ex.HttpRequestError}", Stopwatch.GetElapsedTime(started));
        }
    }
}
