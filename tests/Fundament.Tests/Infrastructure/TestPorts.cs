using System.Net;
using System.Net.Sockets;

namespace Fundament.Tests.Infrastructure;

/// <summary>
/// Loopback ports for servers a test must start on a known port (Kestrel in the test host, child processes).
/// </summary>
/// <remarks>
/// Asking the kernel for port 0 and releasing it hands out a port from the ephemeral range, which any outbound
/// connection of the run (to PostgreSQL, Redis, an upstream) may take before the server binds it; CI saw
/// exactly that. These ports come from below the ephemeral range (Linux: 32768-60999), walk forward from a
/// per-process start so two runs on one machine rarely meet, and are each proven free before they are handed out.
/// </remarks>
public static class TestPorts
{
    private const int First = 20000, Last = 32000;
    private static int _next = First + (Environment.ProcessId * 97 % (Last - First));

    public static int Next()
    {
        for (var attempt = 0; attempt < Last - First; attempt++)
        {
            var port = First + ((Interlocked.Increment(ref _next) - First) % (Last - First));
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // Taken: try the next one.
            }
        }
        throw new InvalidOperationException($"No free loopback port in {First}-{Last}.");
    }
}
