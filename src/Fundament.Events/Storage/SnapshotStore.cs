using System.Text;
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
    /// version that decided it: the stream's, or the saved snapshot's). <paramref name="reserve"/>
    /// runs in the transaction with the bytes the writer's storedBytes grows by (its own snapshot
    /// of the stream being replaced counts back).
    /// </summary>
    public async Task<(SnapshotRefusal Refusal, long Version, Snapshot? Saved)> SaveAsync(
        string stream, long version, string data, string? by, Func<long, Task>? reserve, CancellationToken cancellationToken) =>
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
            var saved = await connection.QuerySingleOrDefaultAsync<(long Version, long Bytes, string? RecordedBy)?>(database.Command(
                "SELECT version, bytes, recorded_by FROM events_snapshots WHERE stream = @stream{for_update}", new { stream }, transaction, cancellationToken: cancellationToken));
            if (saved is { } older && older.Version > version)
            {
                return (SnapshotRefusal.OlderThanSaved, older.Version, null);
            }
            var bytes = (long)Encoding.UTF8.GetByteCount(data);
            if (reserve is not null)
            {
                await reserve(bytes - (saved is { } own && own.RecordedBy == by ? own.Bytes : 0));
            }
            var now = time.GetUtcNow();
            // The WHERE keeps the newest when two writers race past the check above (PostgreSQL); the loser is told.
            var written = await connection.ExecuteAsync(database.Command("""
                INSERT INTO events_snapshots (stream, version, data, bytes, recorded_at, recorded_by) VALUES (@stream, @version, @data, @bytes, @now, @by)
                ON CONFLICT (stream) DO UPDATE SET version = excluded.version, data = excluded.data, bytes = excluded.bytes,
                    recorded_at = excluded.recorded_at, recorded_by = excluded.recorded_by
                WHERE excluded.version >= events_snapshots.version
                """, new { stream, version, data, bytes, now = now.ToUnixTimeMilliseconds(), by }, transaction, cancellationToken: cancellationToken));
            if (written == 0)
            {
                var newer = await connection.ExecuteScalarAsync<long>(database.Command(
                    "SELECT version FROM events_snapshots WHERE stream = @stream", new { stream }, transaction, cancellationToken: cancellationToken));
                return (SnapshotRefusal.OlderThanSaved, newer, null);
            }
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
