using System.Text.Json;
using Dapper;

namespace Fundament.Events.Storage;

/// <summary>Why a snapshot was not saved.</summary>
internal enum SnapshotRefusal { None, NoStream, BeyondStream, OlderThanSaved }

/// <summary>
/// The latest snapshot of each stream (table <c>events_snapshots</c>, one row per stream, so
/// snapshots take at most one row per stream whatever a writer sends).
/// </summary>
internal sealed class SnapshotStore(IDatabase database, TimeProvider time)
{
    /// <summary>
    /// Saves the state of <paramref name="stream"/> at <paramref name="version"/>, unless the stream
    /// does not reach that version or a later snapshot is saved already (then the refusal and the
    /// version that decided it: the stream's, or the saved snapshot's).
    /// </summary>
    public async Task<(SnapshotRefusal Refusal, long Version, Snapshot? Saved)> SaveAsync(string stream, long version, string data, string? by, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            var current = await connection.ExecuteScalarAsync<long?>(database.Command(
                "SELECT version FROM events_streams WHERE stream = @stream", new { stream }, transaction, cancellationToken: cancellationToken)) ?? -1;
            if (current < 0)
            {
                return (SnapshotRefusal.NoStream, -1L, (Snapshot?)null);
            }
            if (version > current)
            {
                return (SnapshotRefusal.BeyondStream, current, null);
            }
            var saved = await connection.ExecuteScalarAsync<long?>(database.Command(
                "SELECT version FROM events_snapshots WHERE stream = @stream", new { stream }, transaction, cancellationToken: cancellationToken));
            if (saved > version)
            {
                return (SnapshotRefusal.OlderThanSaved, saved.Value, null);
            }
            var now = time.GetUtcNow();
            // The WHERE keeps the newest when two writers race past the check above (PostgreSQL).
            await connection.ExecuteAsync(database.Command("""
                INSERT INTO events_snapshots (stream, version, data, recorded_at, recorded_by) VALUES (@stream, @version, @data, @now, @by)
                ON CONFLICT (stream) DO UPDATE SET version = excluded.version, data = excluded.data, recorded_at = excluded.recorded_at, recorded_by = excluded.recorded_by
                WHERE excluded.version >= events_snapshots.version
                """, new { stream, version, data, now = now.ToUnixTimeMilliseconds(), by }, transaction, cancellationToken: cancellationToken));
            using var document = JsonDocument.Parse(data);
            return (SnapshotRefusal.None, version, new Snapshot(stream, version, document.RootElement.Clone(), now, by));
        }, cancellationToken);

    public async Task<Snapshot?> GetAsync(string stream, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(long Version, string Data, long RecordedAt, string? RecordedBy)>(database.Command(
            "SELECT version, data, recorded_at, recorded_by FROM events_snapshots WHERE stream = @stream", new { stream }, cancellationToken: cancellationToken));
        if (row.Data is null)
        {
            return null;
        }
        using var document = JsonDocument.Parse(row.Data);
        return new Snapshot(stream, row.Version, document.RootElement.Clone(), DateTimeOffset.FromUnixTimeMilliseconds(row.RecordedAt), row.RecordedBy);
    }
}
