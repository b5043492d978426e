namespace Fundament.Cluster;

/// <summary>
/// <c>role_without_live_node</c>: a role that some node has run (its row is not yet forgotten) has
/// no alive node now. A role never deployed does not alert; one drained on purpose stops alerting
/// once its nodes are forgotten (<c>DELETE /api/v1/cluster/nodes/{id}</c>).
/// </summary>
internal sealed class ClusterAlertConditions(NodeStore store, NodeIdentity self, IOptions<ClusterOptions> options) : IAlertConditionSource
{
    public const string RoleWithoutLiveNode = "role_without_live_node";

    public IReadOnlyList<AlertConditionKind> Kinds { get; } =
    [
        new(RoleWithoutLiveNode, "A role that nodes have run has no alive node (every node running it is suspect or gone).",
            new BuiltInAlertRule("role-without-live-node", "A role has no live node", TimeSpan.FromSeconds(30), "critical")),
    ];

    public async Task<IReadOnlyList<AlertCondition>> EvaluateAsync(string kind, string? service, CancellationToken cancellationToken)
    {
        if (kind != RoleWithoutLiveNode)
        {
            return [];
        }
        var now = store.Now;
        var nodes = await store.NodesAsync(cancellationToken);
        // The node evaluating is alive, whatever its last recorded heartbeat says.
        bool Alive(NodeRow n) => n.Id == self.Id || n.Status(now, options.Value) == NodeStatus.Alive;
        return nodes.SelectMany(n => n.RoleList).Distinct(StringComparer.Ordinal)
            .Where(role => !nodes.Any(n => n.RoleList.Contains(role) && Alive(n)))
            .Order(StringComparer.Ordinal)
            .Select(role => new AlertCondition($"role:{role}",
                $"No live node runs role {role}: " + string.Join(", ", nodes.Where(n => n.RoleList.Contains(role)).Select(n => $"{n.Id} {n.Status(now, options.Value)}"))))
            .ToList();
    }
}
