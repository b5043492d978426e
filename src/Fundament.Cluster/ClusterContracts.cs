namespace Fundament.Cluster;

public static class NodeStatus
{
    /// <summary>Heartbeat within <see cref="ClusterOptions.SuspectAfter"/>.</summary>
    public const string Alive = "alive";

    /// <summary>Missed heartbeats, not yet <see cref="ClusterOptions.GoneAfter"/>: stalled, partitioned, or dying.</summary>
    public const string Suspect = "suspect";

    /// <summary>Stopped cleanly, or silent longer than <see cref="ClusterOptions.GoneAfter"/>.</summary>
    public const string Gone = "gone";
}

/// <summary>A lease a node holds: one of the duties only one node does at a time.</summary>
/// <param name="Name">e.g. <c>alerts-evaluator</c>, <c>media-policies</c>, <c>registry-events</c>.</param>
/// <param name="Until">When it runs out unless renewed; another node takes it over after that.</param>
public sealed record NodeLeaseResponse(string Name, DateTimeOffset Until);

/// <summary>One node of the cluster.</summary>
/// <param name="Id">The node id (<c>Fundament:Cluster:NodeId</c>, or host and a random suffix).</param>
/// <param name="Roles">The roles it runs.</param>
/// <param name="Version">Its binary's version, <c>1.0.0+&lt;commit&gt;</c>.</param>
/// <param name="Status"><c>alive</c>, <c>suspect</c> or <c>gone</c>.</param>
/// <param name="StoppedAt">Set when it stopped cleanly.</param>
/// <param name="Leases">The leases it holds now.</param>
public sealed record NodeResponse(
    string Id, string Host, IReadOnlyList<string> Roles, string Version, string Status,
    DateTimeOffset StartedAt, DateTimeOffset LastHeartbeatAt, DateTimeOffset? StoppedAt, IReadOnlyList<NodeLeaseResponse> Leases);

/// <summary>Answer of <c>GET /api/v1/cluster/nodes</c>.</summary>
/// <param name="Self">The id of the node that answered.</param>
/// <param name="Nodes">Every node not yet forgotten, alive ones first, then by id.</param>
/// <param name="LiveNodesByRole">How many alive nodes run each role (every known role, zero included).</param>
/// <param name="Versions">The distinct versions among alive nodes; more than one means a rolling upgrade is under way.</param>
public sealed record ClusterNodesResponse(
    string Self, IReadOnlyList<NodeResponse> Nodes, IReadOnlyDictionary<string, int> LiveNodesByRole, IReadOnlyList<string> Versions);
