using Dapper;

namespace Fundament.Vault.Secrets;

/// <summary>
/// Publishes the vault's domain events from its outbox (<c>vault_event_outbox</c>, written with each
/// new version): <c>secret.created</c> for a first version, <c>secret.rotated</c> for every later one,
/// with the path, the version, who wrote it and when; never the value. One control node at a time
/// (by lease) publishes, oldest first, and deletes the row after: a crash between the two publishes it
/// again (at least once; <c>data.eventId</c> identifies it). Audience <c>system</c>: secrets belong to
/// paths and policies, not to a principal, so all-events subscriptions of deliveries.manage receive them.
/// </summary>
internal sealed class VaultEventPublisher(IDatabase database, IEventPublisher events, LeaseStore leases, ILogger<VaultEventPublisher> logger)
    : OutboxPublisher(leases, LeaseName, logger)
{
    public const string LeaseName = "vault-events";

    /// <summary>Publishes up to 100 waiting events, oldest first; returns how many.</summary>
    public override async Task<int> PassAsync(CancellationToken cancellationToken)
    {
        List<OutboxRow> rows;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            rows = (await connection.QueryAsync<OutboxRow>(new CommandDefinition(
                "SELECT id AS Id, event AS Event, path AS Path, version AS Version, at AS At, actor AS Actor FROM vault_event_outbox ORDER BY at, id LIMIT 100",
                cancellationToken: cancellationToken))).ToList();
        }
        foreach (var row in rows)
        {
            await events.PublishAsync(row.Event, "system", new
            {
                eventId = row.Id,
                path = row.Path,
                version = row.Version,
                by = row.Actor,
                at = DateTimeOffset.FromUnixTimeMilliseconds(row.At),
            }, cancellationToken, eventId: row.Id);
            await using var connection = await database.OpenAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM vault_event_outbox WHERE id = @id", new { id = row.Id }, cancellationToken: cancellationToken));
        }
        return rows.Count;
    }

    private sealed class OutboxRow
    {
        public string Id { get; init; } = "";
        public string Event { get; init; } = "";
        public string Path { get; init; } = "";
        public long Version { get; init; }
        public long At { get; init; }
        public string Actor { get; init; } = "";
    }
}

/// <summary>The domain events of the vault.</summary>
public static class VaultEvents
{
    public const string Created = "secret.created";
    public const string Rotated = "secret.rotated";
}
