using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Fundament.Core.Egress;

/// <summary>
/// The ports this process listens on (its API and gateway) and the addresses that reach this
/// machine, so no tenant can point a connection back at Fundament itself. Read from the server
/// once it listens; the machine's interface addresses are re-read every half minute.
/// </summary>
internal sealed class OwnEndpoints(IServiceProvider services, TimeProvider time)
{
    private static readonly TimeSpan InterfaceRefresh = TimeSpan.FromSeconds(30);

    private IReadOnlySet<int>? _ports;
    private (HashSet<IPAddress> Addresses, DateTimeOffset At)? _local;

    /// <summary>The ports the server listens on; empty before it listens (and in the in-memory test host).</summary>
    public IReadOnlySet<int> Ports
    {
        get
        {
            if (_ports is { Count: > 0 } known)
            {
                return known;
            }
            var addresses = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses;
            var ports = (addresses ?? []).Select(PortOf).Where(p => p > 0).ToHashSet();
            _ports = ports;
            return ports;
        }
    }

    /// <summary>Whether <paramref name="address"/>:<paramref name="port"/> would reach this process.</summary>
    public bool IsOwn(IPAddress address, int port) => Ports.Contains(port) && IsLocal(address);

    private bool IsLocal(IPAddress address)
    {
        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            return true;
        }
        var now = time.GetUtcNow();
        if (_local is not { } local || now - local.At > InterfaceRefresh)
        {
            local = (ReadInterfaces(), now);
            _local = local;
        }
        return local.Addresses.Contains(address);
    }

    private static HashSet<IPAddress> ReadInterfaces()
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(n => n.GetIPProperties().UnicastAddresses)
                .Select(u => IpAddresses.Normalize(u.Address))
                .ToHashSet();
        }
        catch (NetworkInformationException)
        {
            return [];
        }
    }

    internal static int PortOf(string url)
    {
        var normal = url.Replace("://+", "://h", StringComparison.Ordinal).Replace("://*", "://h", StringComparison.Ordinal).Replace("://[::]", "://h", StringComparison.Ordinal);
        if (Uri.TryCreate(normal, UriKind.Absolute, out var uri))
        {
            return uri.Port;
        }
        var colon = url.LastIndexOf(':');
        return colon > 0 && int.TryParse(url.AsSpan(colon + 1).TrimEnd('/'), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : -1;
    }
}
