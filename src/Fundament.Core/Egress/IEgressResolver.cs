using System.Net;

namespace Fundament.Core.Egress;

/// <summary>
/// Resolves a host name for a guarded connection. The guard checks exactly the addresses this
/// returns and connects only to them, so a name that re-resolves to another address between a
/// check and a connect (DNS rebinding) cannot slip through. Replaceable in tests.
/// </summary>
public interface IEgressResolver
{
    Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken);
}

internal sealed class DnsEgressResolver : IEgressResolver
{
    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        Dns.GetHostAddressesAsync(host, cancellationToken);
}
