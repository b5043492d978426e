using Dapper;
using Fundament.Core.Hosting;

namespace Fundament.Core.Storage;

/// <summary>
/// Named leases in the shared store, for work one replica should do at a time (evaluating alert
/// rules, say). A holder renews before the lease runs out; if it dies, another takes over after.
/// </summary>
public sealed class LeaseStore(IDatabase database, TimeProvider time, NodeIdentity node)
{
    /// <summary>Takes or renews <paramref name="name"/> for this node (its <see cref="NodeIdentity.Id"/>, which <c>GET /api/v1/cluster/nodes</c> shows as the holder).</summary>
    public Task<bool> TryAcquireAsync(string name, TimeSpan duration, CancellationToken cancellationToken) =>
        TryAcquireAsync(name, node.Id, duration, cancellationToken);

    /// <summary>An owner for a short lock this node takes more than once at a time: <c>&lt;node id&gt;:&lt;random&gt;</c>, so the cluster view still shows the node.</summary>
    public string NewLockOwner() => $"{node.Id}:{Guid.NewGuid():N}";

    /// <summary>Lets go of <paramref name="name"/> if this node holds it, so another node need not wait for it to run out.</summary>
    public Task ReleaseAsync(string name, CancellationToken cancellationToken) => ReleaseAsync(name, node.Id, cancellationToken);

    /// <summary>Takes or renews <paramref name="name"/> for <paramref name="owner"/>; false while someone else holds it.</summary>
    public async Task<bool> TryAcquireAsync(string name, string owner, TimeSpan duration, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        var changed = await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO fundament_leases (name, owner, until_at) VALUES (@name, @owner, @until)
            ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_at = excluded.until_at
            WHERE fundament_leases.owner = excluded.owner OR fundament_leases.until_at < @now
            """, new { name, owner, until = now + (long)duration.TotalMilliseconds, now }, cancellationToken: cancellationToken));
        return changed == 1;
    }

    public async Task ReleaseAsync(string name, string owner, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM fundament_leases WHERE name = @name AND owner = @owner", new { name, owner }, cancellationToken: cancellationToken));
    }
}
