using System.Data.Common;
using System.Text.Json;
using Dapper;

namespace Fundament.Events.Storage;

/// <summary>What a writer expects of a stream before its append.</summary>
internal readonly record struct ExpectedVersion(ExpectedVersion.Kinds Kind, long Version = -1)
{
    public enum Kinds { Any, NoStream, Exists, Exact }

    public static readonly ExpectedVersion Any = new(Kinds.Any);

    public bool Allows(long current) => Kind switch
    {
        Kinds.Any => true,
        Kinds.NoStream => current < 0,
        Kinds.Exists => current >= 0,
        _ => current == Version,
    };

    /// <summary>Parses <c>"any"</c>, <c>"no_stream"</c>, <c>"exists"</c> or a version (a number, or digits in a string); absent means any.</summary>
    public static bool TryParse(JsonElement? value, out ExpectedVersion expected)
    {
        expected = Any;
        if (value is not { } element || element.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return true;
        }
        if (element.ValueKind == JsonValueKind.Number)
        {
            if (element.TryGetInt64(out var n) && n >= 0)
            {
                expected = new ExpectedVersion(Kinds.Exact, n);
                return true;
            }
            return false;
        }
        if (element.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        switch (element.GetString())
        {
            case "any":
                return true;
            case "no_stream":
                expected = new ExpectedVersion(Kinds.NoStream);
                return true;
            case "exists":
                expected = new ExpectedVersion(Kinds.Exists);
                return true;
            case var text when long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v):
                expected = new ExpectedVersion(Kinds.Exact, v);
                return true;
            default:
                return false;
        }
    }
}

/// <summary>An event ready to store: its data and metadata as JSON text.</summary>
internal sealed record EventToStore(string Id, string Type, string Data, string? Metadata, int SchemaVersion = 1);

internal sealed record StreamAppend(string Stream, ExpectedVersion Expected, IReadOnlyList<EventToStore> Events);

/// <summary>The outcome of an append: written, already written before (same ids), or refused.</summary>
internal abstract record AppendOutcome
{
    public sealed record Written(IReadOnlyList<AppendResult> Results) : AppendOutcome;

    /// <summary>Every event id was appended before, in the same streams and order: nothing new was written.</summary>
    public sealed record AlreadyWritten(IReadOnlyList<AppendResult> Results) : AppendOutcome;

    public sealed record WrongVersion(string Stream, long ActualVersion) : AppendOutcome;

    /// <summary>Some ids exist and others do not, or they exist elsewhere: not a retry of one append.</summary>
    public sealed record IdsInUse(IReadOnlyList<string> Ids) : AppendOutcome;
}

/// <summary>
/// Streams and events (tables <c>events_*</c>). Appends serialise on the <c>events_head</c> row,
/// locked first and held to commit: positions are handed out in commit order, so <c>$all</c> is
/// gap-free by construction (a reader can never see position p+1 while p is in flight).
/// </summary>
internal sealed class EventStore(IDatabase database, TimeProvider time)
{
    private const string Columns = "id AS Id, stream AS Stream, version AS Version, position AS Position, type AS Type, schema_version AS SchemaVersion, data AS Data, metadata AS Metadata, recorded_at AS RecordedAt";

    private sealed class Refused(AppendOutcome outcome) : Exception
    {
        public AppendOutcome Outcome { get; } = outcome;
    }

    /// <summary>
    /// Appends to every stream of <paramref name="appends"/> in one transaction (the caller's unit
    /// of work when there is one), or to none; what is written counts against <paramref name="actor"/>'s
    /// <c>storedEvents</c>. <paramref name="reserve"/> runs (in the transaction, with the count) only when
    /// something new is about to be written, so a retry of an earlier append is answered even at a full quota.
    /// </summary>
    public async Task<AppendOutcome> AppendAsync(IReadOnlyList<StreamAppend> appends, string actor, Func<int, Task>? reserve, CancellationToken cancellationToken)
    {
        try
        {
            return await database.InTransactionAsync(async (connection, transaction) =>
            {
                // The lock first: every check below then sees what the appends before this one committed.
                var head = await connection.ExecuteScalarAsync<long>(database.Command(
                    "UPDATE events_head SET position = position WHERE id = 1 RETURNING position", transaction: transaction, cancellationToken: cancellationToken));

                if (await ExistingAsync(connection, transaction, appends, cancellationToken) is { } existing)
                {
                    return existing;
                }
                if (reserve is not null)
                {
                    await reserve(appends.Sum(a => a.Events.Count));
                }

                var now = time.GetUtcNow().ToUnixTimeMilliseconds();
                var position = head;
                var results = new List<AppendResult>(appends.Count);
                foreach (var append in appends)
                {
                    var current = await connection.ExecuteScalarAsync<long?>(database.Command(
                        "SELECT version FROM events_streams WHERE stream = @stream", new { stream = append.Stream }, transaction, cancellationToken: cancellationToken)) ?? -1;
                    if (!append.Expected.Allows(current))
                    {
                        throw new Refused(new AppendOutcome.WrongVersion(append.Stream, current));
                    }
                    await InsertAsync(connection, transaction, append, current + 1, position + 1, now, cancellationToken);
                    var version = current + append.Events.Count;
                    position += append.Events.Count;
                    await connection.ExecuteAsync(database.Command("""
                        INSERT INTO events_streams (stream, version, created_at, updated_at) VALUES (@stream, @version, @now, @now)
                        ON CONFLICT (stream) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at
                        """, new { stream = append.Stream, version, now }, transaction, cancellationToken: cancellationToken));
                    results.Add(new AppendResult(append.Stream, current + 1, version, position));
                }
                await connection.ExecuteAsync(database.Command("UPDATE events_head SET position = @position WHERE id = 1", new { position }, transaction, cancellationToken: cancellationToken));
                await connection.ExecuteAsync(database.Command("""
                    INSERT INTO events_usage (actor, events) VALUES (@actor, @count)
                    ON CONFLICT (actor) DO UPDATE SET events = events_usage.events + excluded.events
                    """, new { actor, count = position - head }, transaction, cancellationToken: cancellationToken));
                return (AppendOutcome)new AppendOutcome.Written(results);
            }, cancellationToken);
        }
        catch (Refused refused)
        {
            return refused.Outcome;
        }
    }

    /// <summary>
    /// Rows per INSERT statement. On PostgreSQL a chunk is one round trip instead of one per event
    /// (3x the batched append rate); SQLite has no round trips, and there one short statement per
    /// row, prepared once, beats a long one parsed each time (measured: 2.5x).
    /// </summary>
    internal int InsertChunk => database.Dialect == SqlDialect.Postgres ? 250 : 1;

    /// <summary>Inserts <paramref name="append"/>'s events from <paramref name="version"/> and <paramref name="position"/> on, a chunk of rows per statement.</summary>
    private async Task InsertAsync(DbConnection connection, DbTransaction transaction, StreamAppend append, long version, long position, long now, CancellationToken cancellationToken)
    {
        for (var offset = 0; offset < append.Events.Count; offset += InsertChunk)
        {
            var chunk = append.Events.Skip(offset).Take(InsertChunk).ToList();
            var parameters = new DynamicParameters(new { stream = append.Stream, now });
            var sql = new System.Text.StringBuilder("INSERT INTO events_events (position, id, stream, version, type, schema_version, data, metadata, recorded_at) VALUES ");
            for (var i = 0; i < chunk.Count; i++)
            {
                var e = chunk[i];
                sql.Append(i == 0 ? "" : ", ").Append(System.Globalization.CultureInfo.InvariantCulture, $"(@p{i}, @i{i}, @stream, @v{i}, @t{i}, @s{i}, @d{i}, @m{i}, @now)");
                parameters.Add($"p{i}", position + offset + i);
                parameters.Add($"i{i}", e.Id);
                parameters.Add($"v{i}", version + offset + i);
                parameters.Add($"t{i}", e.Type);
                parameters.Add($"s{i}", e.SchemaVersion);
                parameters.Add($"d{i}", e.Data);
                parameters.Add($"m{i}", e.Metadata);
            }
            await connection.ExecuteAsync(database.Command(sql.ToString(), parameters, transaction, cancellationToken: cancellationToken));
        }
    }

    /// <summary>
    /// The earlier result when every id was appended before in the same streams and order (a retry);
    /// <see cref="AppendOutcome.IdsInUse"/> when some were; null when none were.
    /// </summary>
    private async Task<AppendOutcome?> ExistingAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<StreamAppend> appends, CancellationToken cancellationToken)
    {
        var ids = appends.SelectMany(a => a.Events.Select(e => e.Id)).ToArray();
        var found = (await connection.QueryAsync<(string Id, string Stream, long Version, long Position)>(database.Command(
            $"SELECT id, stream, version, position FROM events_events WHERE {database.Dialect.InList("id", "ids")}", new { ids }, transaction, cancellationToken: cancellationToken)))
            .ToDictionary(r => r.Id, StringComparer.Ordinal);
        if (found.Count == 0)
        {
            return null;
        }
        var results = new List<AppendResult>();
        foreach (var append in appends)
        {
            var rows = append.Events.Select(e => found.TryGetValue(e.Id, out var row) ? row : default).ToList();
            var consecutive = rows.All(r => r.Id is not null && r.Stream == append.Stream)
                && rows.Zip(rows.Skip(1)).All(p => p.Second.Version == p.First.Version + 1);
            if (!consecutive)
            {
                throw new Refused(new AppendOutcome.IdsInUse(found.Keys.Order(StringComparer.Ordinal).ToList()));
            }
            results.Add(new AppendResult(append.Stream, rows[0].Version, rows[^1].Version, rows[^1].Position));
        }
        return new AppendOutcome.AlreadyWritten(results);
    }

    /// <summary>The stream's current version; -1 when it has no events.</summary>
    public async Task<long> VersionAsync(string stream, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>(database.Command("SELECT version FROM events_streams WHERE stream = @stream", new { stream }, cancellationToken: cancellationToken)) ?? -1;
    }

    /// <summary>Events of one stream from version <paramref name="from"/> (inclusive), forward or backward.</summary>
    public async Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string stream, long from, bool forward, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var sql = forward
            ? $"SELECT {Columns} FROM events_events WHERE stream = @stream AND version >= @from ORDER BY version LIMIT @limit"
            : $"SELECT {Columns} FROM events_events WHERE stream = @stream AND version <= @from ORDER BY version DESC LIMIT @limit";
        return (await connection.QueryAsync<EventRow>(database.Command(sql, new { stream, from, limit }, cancellationToken: cancellationToken))).Select(r => r.ToRecorded()).ToList();
    }

    /// <summary>Events of every stream after <paramref name="after"/> (exclusive) in position order, optionally narrowed by stream prefix and type.</summary>
    public async Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(long after, string? streamPrefix, string? type, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<EventRow>(database.Command($"""
            SELECT {Columns} FROM events_events
            WHERE position > @after
              AND (@streamPrefix IS NULL OR substr(stream, 1, @prefixLength) = @streamPrefix)
              AND (@type IS NULL OR type = @type)
            ORDER BY position LIMIT @limit
            """, new { after, streamPrefix, prefixLength = streamPrefix?.Length ?? 0, type, limit }, cancellationToken: cancellationToken))).Select(r => r.ToRecorded()).ToList();
    }
}
