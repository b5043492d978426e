namespace Fundament.Cluster;

internal static class ClusterApi
{
    public static RouteGroupBuilder MapClusterApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/cluster").WithTags("Cluster");
        group.MapGet("/nodes", NodesAsync).RequireAuthorization(ClusterPermissions.Read).WithName("ListClusterNodes")
            .WithSummary("Every node: its roles, version, status (alive, suspect, gone), last heartbeat and the leases it holds; live nodes per role.");
        group.MapDelete("/nodes/{id}", ForgetAsync).RequireAuthorization(ClusterPermissions.Write).WithName("ForgetClusterNode")
            .WithSummary("Forgets a node that is suspect or gone (a drained node), so its roles no longer alert; an alive node is refused (409).");
        return group;
    }

    private static async Task<Ok<ClusterNodesResponse>> NodesAsync(NodeStore store, NodeIdentity self, IOptions<ClusterOptions> options, CancellationToken cancellationToken)
    {
        var now = store.Now;
        var nodes = await store.NodesAsync(cancellationToken);
        var leases = await store.LeasesAsync(cancellationToken);
        var answer = nodes
            .Select(n => new NodeResponse(
                n.Id, n.Host, n.RoleList, n.Version, n.Status(now, options.Value),
                DateTimeOffset.FromUnixTimeMilliseconds(n.StartedAt), DateTimeOffset.FromUnixTimeMilliseconds(n.HeartbeatAt),
                n.StoppedAt is { } stopped ? DateTimeOffset.FromUnixTimeMilliseconds(stopped) : null,
                leases.Where(l => HeldBy(l, n.Id)).Select(l => new NodeLeaseResponse(l.Name, DateTimeOffset.FromUnixTimeMilliseconds(l.UntilAt))).ToList()))
            .OrderBy(n => n.Status == NodeStatus.Alive ? 0 : n.Status == NodeStatus.Suspect ? 1 : 2)
            .ThenBy(n => n.Id, StringComparer.Ordinal)
            .ToList();
        var alive = answer.Where(n => n.Status == NodeStatus.Alive).ToList();
        var perRole = FundamentRoles.Concrete
            .ToDictionary(r => r, r => alive.Count(n => n.Roles.Contains(r)), StringComparer.Ordinal);
        return TypedResults.Ok(new ClusterNodesResponse(self.Id, answer, perRole, alive.Select(n => n.Version).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList()));
    }

    // A node holds leases under its id, and short locks under "<id>:<random>".
    private static bool HeldBy(LeaseRow lease, string node) =>
        lease.Owner == node || (lease.Owner.Length > node.Length && lease.Owner.StartsWith(node, StringComparison.Ordinal) && lease.Owner[node.Length] == ':');

    private static async Task<Results<NoContent, ProblemHttpResult>> ForgetAsync(
        string id, NodeStore store, IDatabase database, IAuditLog audit, HttpContext context, CancellationToken cancellationToken)
    {
        if (!ClusterOptions.IsNodeId(id))
        {
            return Problems.NotFound($"node '{id[..Math.Min(id.Length, 128)]}'");
        }
        var forgotten = await database.AuditedAsync(audit, () => store.ForgetAsync(id, cancellationToken),
            done => done == true ? new AuditEvent("cluster.node.forget", AuditOutcome.Success) { Target = $"node:{id}" }.From(context) : null, cancellationToken);
        return forgotten switch
        {
            true => TypedResults.NoContent(),
            false => Problems.NotFound($"node '{id}'"),
            null => Problems.Conflict($"Node '{id}' is alive; stop it first (a node that stops cleanly is gone at once), or wait until it is suspect."),
        };
    }
}
