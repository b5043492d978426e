using System.Net;
using System.Net.Sockets;

namespace Fundament.Core.Egress;

/// <summary>
/// Opens guarded connections: resolves the host once, checks every address it got against the
/// <see cref="EgressGuard"/>, and connects only to addresses that passed, so what was checked is
/// what is reached. Plugged into <see cref="SocketsHttpHandler.ConnectCallback"/> by
/// <see cref="Guard"/>.
/// </summary>
public sealed class EgressConnector(EgressGuard guard, IEgressResolver resolver)
{
    /// <summary>
    /// Makes <paramref name="handler"/> connect only where <paramref name="purpose"/> allows, and
    /// never through a proxy (a proxy would be the only address checked).
    /// </summary>
    /// <param name="allowOwnPort">Which of this process's own ports the caller may reach (only the gateway routing the fundament service may reach its API port).</param>
    /// <param name="alsoDenied">Endpoints the caller knows to be forbidden besides the policy (the gateway: other Fundament nodes' API endpoints).</param>
    public SocketsHttpHandler Guard(SocketsHttpHandler handler, EgressPurpose purpose, Func<int, bool>? allowOwnPort = null, Func<IPAddress, int, bool>? alsoDenied = null)
    {
        handler.UseProxy = false;
        handler.ConnectCallback = async (context, cancellationToken) =>
            new NetworkStream(await ConnectSocketAsync(purpose, context.DnsEndPoint.Host, context.DnsEndPoint.Port, allowOwnPort, cancellationToken, alsoDenied: alsoDenied), ownsSocket: true);
        return handler;
    }

    /// <summary>Resolves, checks and connects; throws <see cref="EgressDeniedException"/> when no address may be reached.</summary>
    public async ValueTask<Stream> ConnectAsync(EgressPurpose purpose, string host, int port, Func<int, bool>? allowOwnPort, CancellationToken cancellationToken) =>
        new NetworkStream(await ConnectSocketAsync(purpose, host, port, allowOwnPort, cancellationToken), ownsSocket: true);

    /// <summary>As <see cref="ConnectAsync"/>, for clients that take a connected socket (MailKit).</summary>
    public async ValueTask<Socket> ConnectSocketAsync(
        EgressPurpose purpose, string host, int port, Func<int, bool>? allowOwnPort, CancellationToken cancellationToken, bool operatorConfigured = false, Func<IPAddress, int, bool>? alsoDenied = null)
    {
        var bare = host.Trim('[', ']');
        var literal = IPAddress.TryParse(bare, out var parsed);
        var addresses = literal ? [parsed!] : await resolver.ResolveAsync(bare, cancellationToken).ConfigureAwait(false);
        var allowed = new List<IPAddress>(addresses.Length);
        string? refusal = null;
        foreach (var address in addresses)
        {
            var decision = alsoDenied?.Invoke(IpAddresses.Normalize(address), port) == true
                ? new EgressDecision(false, $"{address}:{port} is a Fundament node's API endpoint")
                : guard.Evaluate(purpose, literal ? null : bare, address, port, allowOwnPort, operatorConfigured);
            if (decision.Allowed)
            {
                allowed.Add(address);
            }
            else
            {
                refusal ??= decision.Reason;
            }
        }
        if (allowed.Count == 0)
        {
            var reason = refusal ?? $"{bare} resolved to no address";
            guard.Refused(purpose, $"{bare}:{port}", reason);
            throw new EgressDeniedException($"Egress to {bare}:{port} refused: {reason}.");
        }
        Exception? last = null;
        foreach (var address in allowed)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken).ConfigureAwait(false);
                return socket;
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw last!;
    }
}
