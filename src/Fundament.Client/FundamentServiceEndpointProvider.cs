using System.Net;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.ServiceDiscovery;

namespace Fundament.Client;

/// <summary>Resolves <c>http://&lt;service&gt;/</c> in HttpClient to the service's passing instances in Fundament's registry.</summary>
internal sealed class FundamentServiceEndpointProviderFactory(FundamentApi api) : IServiceEndpointProviderFactory
{
    public bool TryCreateProvider(ServiceEndpointQuery query, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IServiceEndpointProvider? provider)
    {
        provider = new FundamentServiceEndpointProvider(query.ServiceName, api);
        return true;
    }
}

/// <summary>
/// Returns only passing instances (so a failing instance stops receiving traffic), and a change
/// token backed by a blocking watch on the service, so a change reaches the load balancer within
/// about a second instead of at the next refresh period.
/// </summary>
internal sealed class FundamentServiceEndpointProvider(string service, FundamentApi api) : IServiceEndpointProvider
{
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(5);
    private readonly CancellationTokenSource _disposed = new();

    public async ValueTask PopulateAsync(IServiceEndpointBuilder endpoints, CancellationToken cancellationToken)
    {
        var (index, instances) = await api.HealthyInstancesAsync(service, null, Wait, cancellationToken).ConfigureAwait(false);
        foreach (var instance in instances)
        {
            EndPoint endPoint = IPAddress.TryParse(instance.Address, out var ip) ? new IPEndPoint(ip, instance.Port) : new DnsEndPoint(instance.Address, instance.Port);
            endpoints.Endpoints.Add(ServiceEndpoint.Create(endPoint));
        }
        var changed = new CancellationTokenSource();
        endpoints.AddChangeToken(new CancellationChangeToken(changed.Token));
        _ = WatchAsync(index, changed);
    }

    private async Task WatchAsync(long index, CancellationTokenSource changed)
    {
        try
        {
            await api.HealthyInstancesAsync(service, index, Wait, _disposed.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
        {
            return;
        }
        catch (HttpRequestException)
        {
            await Task.Delay(TimeSpan.FromSeconds(5), _disposed.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        if (!_disposed.IsCancellationRequested)
        {
            await changed.CancelAsync().ConfigureAwait(false);
        }
        changed.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        _disposed.Cancel();
        _disposed.Dispose();
        return ValueTask.CompletedTask;
    }
}
