using Dapper;

namespace Fundament.Cluster;

/// <summary>A node's row as stored.</summary>
internal sealed record NodeRow(string Id, string Host, string Roles, string Version, long StartedAt, long HeartbeatAt, long? StoppedAt)
{
    public IReadOnlyList<string> RoleList => Roles.Split(',', StringSplitOptions.RemoveEmptyEntries);

    public string Status(long now, ClusterOptions options) =>
        StoppedAt is not null || now - HeartbeatAt > (long)options.GoneAfter.TotalMilliseconds ? NodeStatus.Gone
        : now - HeartbeatAt > (long)options.SuspectAfter.TotalMilliseconds ? NodeStatus.Suspect
        : NodeStatus.Alive;
}

/// <summary>A lease as stored in <c>fundament_leases</c>.</summary>
internal sealed record LeaseRow(string Name, string Owner, long UntilAt);

/// <summary><c>cluster_nodes</c>: one row per node, written only by that node (and removed by an operator or after <see cref="ClusterOptions.ForgetAfter"/>).</summary>
internal sealed class NodeStore(IDatabase database, TimeProvider time, IOptions<ClusterOptions> options)
{
    private const string Columns = "id AS Id, host AS Host, roles AS Roles, version AS Version, started_at AS StartedAt, heartbeat_at AS HeartbeatAt, stopped_at AS StoppedAt";

    public long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Records <paramref name="node"/> as alive now (inserting it if it was never recorded or was
    /// forgotten), and forgets nodes gone longer than <see cref="ClusterOptions.ForgetAfter"/> and
    /// all but the 500 most recently gone (a crash loop starts a new node every few seconds).
    /// </summary>
    public async Task HeartbeatAsync(NodeIdentity node, CancellationToken cancellationToken)
    {
        var now = Now;
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO cluster_nodes (id, host, roles, version, started_at, heartbeat_at, stopped_at)
            VALUES (@Id, @Host, @Roles, @Version, @StartedAt, @now, NULL)
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL,
                host = excluded.host, roles = excluded.roles, version = excluded.version, started_at = excluded.started_at;
            DELETE FROM cluster_nodes WHERE COALESCE(stopped_at, heartbeat_at) < @forgetBefore AND id <> @Id;
            DELETE FROM cluster_nodes WHERE (stopped_at IS NOT NULL OR heartbeat_at < @goneBefore) AND COALESCE(stopped_at, heartbeat_at) <
                (SELECT COALESCE(stopped_at, heartbeat_at) FROM cluster_nodes WHERE stopped_at IS NOT NULL OR heartbeat_at < @goneBefore
                 ORDER BY COALESCE(stopped_at, heartbeat_at) DESC LIMIT 1 OFFSET 499);
            """, new
        {
            node.Id,
            node.Host,
            Roles = string.Join(',', node.Roles),
            node.Version,
            StartedAt = node.StartedAt.ToUnixTimeMilliseconds(),
            now,
            forgetBefore = now - (long)options.Value.ForgetAfter.TotalMilliseconds,
            goneBefore = now - (long)options.Value.GoneAfter.TotalMilliseconds,
        }, cancellationToken: cancellationToken));
    }

    /// <summary>Another live node recorded under <paramref name="node"/>'s id (not stopped, heartbeat within <see cref="ClusterOptions.SuspectAfter"/>, another start time or host), if any.</summary>
    public async Task<NodeRow?> LiveTwinAsync(NodeIdentity node, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<NodeRow>(new CommandDefinition(
            $"SELECT {Columns} FROM cluster_nodes WHERE id = @id", new { id = node.Id }, cancellationToken: cancellationToken));
        return row is not null && row.Status(Now, options.Value) == NodeStatus.Alive
            && (row.StartedAt != node.StartedAt.ToUnixTimeMilliseconds() || row.Host != node.Host) ? row : null;
    }

    /// <summary>Marks the node stopped (gone at once) and lets go of its leases, so others take its duties without waiting for them to run out.</summary>
    public async Task LeaveAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE cluster_nodes SET stopped_at = @now WHERE id = @id;
            DELETE FROM fundament_leases WHERE owner = @id;
            """, new { id, now = Now }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<NodeRow>> NodesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<NodeRow>(new CommandDefinition(
            $"SELECT {Columns} FROM cluster_nodes ORDER BY id", cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>Leases that have not run out.</summary>
    public async Task<IReadOnlyList<LeaseRow>> LeasesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<LeaseRow>(new CommandDefinition(
            "SELECT name AS Name, owner AS Owner, until_at AS UntilAt FROM fundament_leases WHERE until_at >= @now ORDER BY name",
            new { now = Now }, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>Removes a node that is not alive; false when there is no such node, null when it is still alive (refused).</summary>
    public async Task<bool?> ForgetAsync(string id, CancellationToken cancellationToken)
    {
        var now = Now;
        var aliveSince = now - (long)options.Value.SuspectAfter.TotalMilliseconds;
        await using var connection = await database.OpenAsync(cancellationToken);
        var removed = await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM cluster_nodes WHERE id = @id AND (stopped_at IS NOT NULL OR heartbeat_at < @aliveSince)",
            new { id, aliveSince }, cancellationToken: cancellationToken));
        if (removed == 1)
        {
            return true;
        }
        var exists = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM cluster_nodes WHERE id = @id", new { id }, cancellationToken: cancellationToken));
        return exists == 0 ? false : null;
    }
}
