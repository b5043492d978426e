using System.Reflection;
using System.Security.Cryptography;

namespace Fundament.Core.Hosting;

/// <summary>
/// This process as the cluster knows it: the id it holds leases under and heartbeats as, its host,
/// its roles and its version. The id is <c>Fundament:Cluster:NodeId</c> when set (a StatefulSet's
/// pod name, say); otherwise <c>&lt;host&gt;-&lt;8 hex&gt;</c>, new for every start, so a restarted
/// process never inherits a lease its previous life held.
/// </summary>
public sealed class NodeIdentity
{
    public const string NodeIdKey = "Fundament:Cluster:NodeId";

    public NodeIdentity(string id, string host, IReadOnlySet<string> roles, string version, DateTimeOffset startedAt)
    {
        Id = id;
        Host = host;
        Roles = roles.Where(r => r != FundamentRoles.All).Order(StringComparer.Ordinal).ToList();
        Version = version;
        StartedAt = startedAt;
    }

    public string Id { get; }

    public string Host { get; }

    /// <summary>The concrete roles, sorted (<c>all</c> is expanded).</summary>
    public IReadOnlyList<string> Roles { get; }

    /// <summary>The binary's version: <c>1.0.0+&lt;commit&gt;</c>.</summary>
    public string Version { get; }

    public DateTimeOffset StartedAt { get; }

    /// <summary>The version of this build, as the assembly's informational version states it.</summary>
    public static string BuildVersion { get; } =
        typeof(NodeIdentity).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(NodeIdentity).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    internal static NodeIdentity Create(IConfiguration configuration, RoleSet roles, TimeProvider time)
    {
        var host = Environment.MachineName;
        var configured = configuration[NodeIdKey];
        var id = string.IsNullOrWhiteSpace(configured)
            ? $"{host.ToLowerInvariant()}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}"
            : configured.Trim();
        return new NodeIdentity(id, host, roles.Roles, BuildVersion, time.GetUtcNow());
    }
}
