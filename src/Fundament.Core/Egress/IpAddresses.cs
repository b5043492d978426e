using System.Net;
using System.Net.Sockets;

namespace Fundament.Core.Egress;

/// <summary>
/// Address normalisation and the fixed address classes of the egress policy. Every address is
/// checked in its normal form, and an IPv6 address that carries an IPv4 address (mapped,
/// compatible, SIIT, NAT64, 6to4, Teredo) is checked as that IPv4 address too, so
/// <c>::ffff:169.254.169.254</c> or <c>64:ff9b::a9fe:a9fe</c> cannot reach what
/// <c>169.254.169.254</c> cannot. Decimal, octal and hex IPv4 forms (<c>2852039166</c>,
/// <c>0251.0376.0251.0376</c>, <c>0xA9FEA9FE</c>) parse to the same address before any check.
/// </summary>
public static class IpAddresses
{
    /// <summary>Never reachable for any purpose, whatever the configuration says.</summary>
    internal static readonly IPNetwork[] AlwaysDenied =
    [
        IPNetwork.Parse("0.0.0.0/8"),          // "this network"; 0.0.0.0 reaches the local host on Linux
        IPNetwork.Parse("169.254.0.0/16"),     // link-local, including 169.254.169.254 (AWS, GCP, Azure, Oracle metadata)
        IPNetwork.Parse("100.100.100.200/32"), // Alibaba Cloud metadata
        IPNetwork.Parse("168.63.129.16/32"),   // Azure WireServer (host agent)
        IPNetwork.Parse("224.0.0.0/4"),        // multicast
        IPNetwork.Parse("240.0.0.0/4"),        // reserved, and 255.255.255.255 broadcast
        IPNetwork.Parse("::/128"),             // unspecified
        IPNetwork.Parse("fe80::/10"),          // link-local
        IPNetwork.Parse("fd00:ec2::254/128"),  // AWS metadata over IPv6
        IPNetwork.Parse("ff00::/8"),           // multicast
    ];

    /// <summary>Denied by default for webhooks and alert channels: loopback and the private ranges.</summary>
    internal static readonly IPNetwork[] Internal =
    [
        IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("10.0.0.0/8"),
        IPNetwork.Parse("172.16.0.0/12"),
        IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("100.64.0.0/10"),      // carrier-grade NAT, often a provider's internal network
        IPNetwork.Parse("192.0.0.0/24"),       // IETF protocol assignments
        IPNetwork.Parse("198.18.0.0/15"),      // benchmarking
        IPNetwork.Parse("::1/128"),
        IPNetwork.Parse("fc00::/7"),           // unique local
        IPNetwork.Parse("fec0::/10"),          // deprecated site-local
    ];

    private static readonly IPNetwork Nat64 = IPNetwork.Parse("64:ff9b::/96");
    private static readonly IPNetwork Nat64Local = IPNetwork.Parse("64:ff9b:1::/48");
    private static readonly IPNetwork Siit = IPNetwork.Parse("::ffff:0:0:0/96");
    private static readonly IPNetwork SixToFour = IPNetwork.Parse("2002::/16");
    private static readonly IPNetwork Teredo = IPNetwork.Parse("2001::/32");
    private static readonly IPNetwork Compatible = IPNetwork.Parse("::/96");

    /// <summary>IPv4-mapped IPv6 becomes IPv4; everything else is returned as is (without a scope id).</summary>
    public static IPAddress Normalize(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }
        return address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0 ? new IPAddress(address.GetAddressBytes()) : address;
    }

    /// <summary>The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo client), or null.</summary>
    public static IPAddress? EmbeddedIPv4(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return null;
        }
        var bytes = address.GetAddressBytes();
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }
        // NAT64 (well-known and local-use prefixes), SIIT (::ffff:0:a.b.c.d) and IPv4-compatible addresses carry it in the last 32 bits.
        if (Nat64.Contains(address) || Nat64Local.Contains(address) || Siit.Contains(address)
            || (Compatible.Contains(address) && !address.Equals(IPAddress.IPv6Any) && !address.Equals(IPAddress.IPv6Loopback)))
        {
            return new IPAddress(bytes.AsSpan(12, 4));
        }
        if (SixToFour.Contains(address))
        {
            return new IPAddress(bytes.AsSpan(2, 4));
        }
        if (Teredo.Contains(address))
        {
            // The client address is stored inverted in the last 32 bits.
            Span<byte> client = [(byte)~bytes[12], (byte)~bytes[13], (byte)~bytes[14], (byte)~bytes[15]];
            return new IPAddress(client);
        }
        return null;
    }

    /// <summary>The address and, for IPv6 carrying IPv4, that IPv4 address too.</summary>
    internal static IEnumerable<IPAddress> Forms(IPAddress address)
    {
        var normal = Normalize(address);
        yield return normal;
        if (EmbeddedIPv4(normal) is { } v4)
        {
            yield return v4;
        }
    }

    internal static bool In(IPAddress address, IPNetwork[] networks)
    {
        foreach (var network in networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }
        return false;
    }
}
