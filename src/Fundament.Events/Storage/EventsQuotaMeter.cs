using Dapper;
using Fundament.Core.Quotas;

namespace Fundament.Events.Storage;

/// <summary>The <c>storedEvents</c> quota: events a principal has appended, counted as they are written.</summary>
internal sealed class EventsQuotaMeter(IDatabase database) : IQuotaMeter
{
    public string Quota => Core.Quotas.Quota.StoredEvents;

    public async Task<long> UsedAsync(string actor, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>(database.Command("SELECT events FROM events_usage WHERE actor = @actor", new { actor }, cancellationToken: cancellationToken)) ?? 0;
    }
}

/// <summary>storedBytes, the event store's share: the snapshots a principal saved last (media meters the rest).</summary>
internal sealed class SnapshotBytesMeter(IDatabase database) : IQuotaMeter
{
    public string Quota => Core.Quotas.Quota.StoredBytes;

    public async Task<long> UsedAsync(string actor, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>(database.Command("SELECT SUM(bytes) FROM events_snapshots WHERE recorded_by = @actor", new { actor }, cancellationToken: cancellationToken)) ?? 0;
    }
}
