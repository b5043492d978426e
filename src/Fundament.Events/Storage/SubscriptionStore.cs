using Dapper;

namespace Fundament.Events.Storage;

internal enum SubscriptionCreation { Created, NameTaken, OverLimit }

/// <summary>
/// Subscriptions over <c>$all</c> (tables <c>events_subscriptions</c>, <c>events_deliveries</c>).
/// A pull locks the subscription's row, hands out what is due again (a lease ran out, a nack's
/// backoff passed) and then new matching events up to the committed head, each under its own lease.
/// Positions become visible in commit order (see <see cref="EventStore"/>), so moving
/// <c>dispatched</c> up to the head read in the same transaction never passes a position an
/// in-flight append may still fill.
/// </summary>
internal sealed class SubscriptionStore(IDatabase database, TimeProvider time)
{
    public const string CatchUp = "catchup";
    public const string Competing = "competing";
    public static readonly IReadOnlyList<string> Modes = [CatchUp, Competing];

    private const string Leased = "leased";
    private const string Ready = "ready";
    private const string Parked = "parked";

    private const string SubscriptionColumns = "name AS Name, stream_prefix AS StreamPrefix, event_type AS EventType, mode AS Mode, max_attempts AS MaxAttempts, dispatched AS Dispatched, created_at AS CreatedAt, created_by AS CreatedBy";
    private const string EventColumns = "e.id AS Id, e.stream AS Stream, e.version AS Version, e.position AS Position, e.type AS Type, e.schema_version AS SchemaVersion, e.data AS Data, e.metadata AS Metadata, e.recorded_at AS RecordedAt";

    /// <summary>
    /// Creates the subscription unless the name is taken or <paramref name="createdBy"/> holds
    /// <paramref name="limit"/> already. <paramref name="from"/> null means the end.
    /// </summary>
    public async Task<SubscriptionCreation> CreateAsync(SubscriptionDefinition definition, string? from, long? fromPosition, string? createdBy, int limit, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            if (createdBy is not null)
            {
                // The principal's usage row, locked (an upsert takes the row lock): one principal's creates
                // take turns, so two at once cannot both take the last place (SQLite serialises writers anyway).
                await connection.ExecuteAsync(database.Command("""
                    INSERT INTO events_usage (actor, events) VALUES (@createdBy, 0)
                    ON CONFLICT (actor) DO UPDATE SET events = events_usage.events
                    """, new { createdBy }, transaction, cancellationToken: cancellationToken));
                var held = await connection.ExecuteScalarAsync<int>(database.Command(
                    "SELECT COUNT(*) FROM events_subscriptions WHERE created_by = @createdBy", new { createdBy }, transaction, cancellationToken: cancellationToken));
                if (held >= limit)
                {
                    return SubscriptionCreation.OverLimit;
                }
            }
            var head = await connection.ExecuteScalarAsync<long>(database.Command("SELECT position FROM events_head WHERE id = 1", transaction: transaction, cancellationToken: cancellationToken));
            var dispatched = from switch
            {
                "start" => 0,
                "end" => head,
                _ => fromPosition ?? head,
            };
            var inserted = await connection.ExecuteAsync(database.Command("""
                INSERT INTO events_subscriptions (name, stream_prefix, event_type, mode, max_attempts, dispatched, created_at, created_by)
                VALUES (@Name, @StreamPrefix, @EventType, @Mode, @MaxAttempts, @dispatched, @now, @createdBy)
                ON CONFLICT (name) DO NOTHING
                """, new { definition.Name, definition.StreamPrefix, definition.EventType, definition.Mode, definition.MaxAttempts, dispatched, now = time.GetUtcNow().ToUnixTimeMilliseconds(), createdBy },
                transaction, cancellationToken: cancellationToken));
            return inserted == 1 ? SubscriptionCreation.Created : SubscriptionCreation.NameTaken;
        }, cancellationToken);

    public async Task<SubscriptionDefinition?> FindAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<SubscriptionDefinition>(database.Command($"SELECT {SubscriptionColumns} FROM events_subscriptions WHERE name = @name", new { name }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<SubscriptionDefinition>> ListAsync(string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<SubscriptionDefinition>(database.Command(
            $"SELECT {SubscriptionColumns} FROM events_subscriptions WHERE (@after IS NULL OR name > @after) ORDER BY name LIMIT @take", new { after, take }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync(database.Command("DELETE FROM events_deliveries WHERE subscription = @name", new { name }, transaction, cancellationToken: cancellationToken));
            return await connection.ExecuteAsync(database.Command("DELETE FROM events_subscriptions WHERE name = @name", new { name }, transaction, cancellationToken: cancellationToken)) == 1;
        }, cancellationToken);

    /// <summary>
    /// Leases up to <paramref name="max"/> events. A catch-up subscription hands out nothing while
    /// an earlier event is leased or waiting to be retried, so its consumer sees position order; a
    /// competing one hands out to every puller, up to <paramref name="maxInFlight"/> leases at once.
    /// </summary>
    /// <remarks>
    /// With <paramref name="createdAt"/>, only from the subscription created then: a caller that
    /// checked access to one subscription never leases from another created under the same name since.
    /// </remarks>
    public async Task<IReadOnlyList<LeasedEvent>> PullAsync(string name, int max, TimeSpan lease, int maxInFlight, CancellationToken cancellationToken, long? createdAt = null) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            // The lock first: pulls of one subscription take turns, so no event is leased twice.
            if (await connection.ExecuteAsync(database.Command("UPDATE events_subscriptions SET dispatched = dispatched WHERE name = @name", new { name }, transaction, cancellationToken: cancellationToken)) == 0)
            {
                return (IReadOnlyList<LeasedEvent>)[];
            }
            var subscription = await connection.QuerySingleAsync<SubscriptionDefinition>(database.Command($"SELECT {SubscriptionColumns} FROM events_subscriptions WHERE name = @name", new { name }, transaction, cancellationToken: cancellationToken));
            if (createdAt is { } expected && subscription.CreatedAt != expected)
            {
                return [];
            }
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var until = now + (long)lease.TotalMilliseconds;

            // A lease that ran out on its last attempt parks its event instead of handing it out again.
            await connection.ExecuteAsync(database.Command("""
                UPDATE events_deliveries SET state = 'parked', parked_at = @now, lease_id = NULL,
                    last_error = 'The lease ran out on the last attempt.', first_failure_at = COALESCE(first_failure_at, @now), last_failure_at = @now
                WHERE subscription = @name AND state = 'leased' AND visible_at <= @now AND attempts >= @MaxAttempts
                """, new { name, now, subscription.MaxAttempts }, transaction, cancellationToken: cancellationToken));

            // Only what this pull needs, never every delivery in flight (a competing subscription may have thousands).
            List<long> redelivered;
            long notDue = 0;
            var anyPending = false;
            if (subscription.Mode == CatchUp)
            {
                // In order: the outstanding events from the oldest on, as far as they are due (a leased
                // or backing-off one stops the run), and nothing new while any is outstanding.
                var outstanding = (await connection.QueryAsync<(long Position, long VisibleAt)>(database.Command(
                    "SELECT position, visible_at FROM events_deliveries WHERE subscription = @name AND state <> 'parked' ORDER BY position LIMIT @max",
                    new { name, max }, transaction, cancellationToken: cancellationToken))).ToList();
                anyPending = outstanding.Count > 0;
                redelivered = outstanding.TakeWhile(o => o.VisibleAt <= now).Select(o => o.Position).ToList();
                if (anyPending && redelivered.Count == 0)
                {
                    return [];
                }
            }
            else
            {
                notDue = await connection.ExecuteScalarAsync<long>(database.Command(
                    "SELECT COUNT(*) FROM events_deliveries WHERE subscription = @name AND state <> 'parked' AND visible_at > @now",
                    new { name, now }, transaction, cancellationToken: cancellationToken));
                var take = (int)Math.Max(0, Math.Min(max, maxInFlight - notDue));
                redelivered = take == 0 ? [] : (await connection.QueryAsync<long>(database.Command(
                    "SELECT position FROM events_deliveries WHERE subscription = @name AND state <> 'parked' AND visible_at <= @now ORDER BY position LIMIT @take",
                    new { name, now, take }, transaction, cancellationToken: cancellationToken))).ToList();
            }
            var room = (int)Math.Max(0, maxInFlight - notDue);
            var leased = new List<(long Position, string LeaseId, int Attempt)>();
            foreach (var position in redelivered.Take(Math.Min(max, room)))
            {
                var leaseId = Guid.NewGuid().ToString("N");
                var attempts = await connection.ExecuteScalarAsync<int>(database.Command("""
                    UPDATE events_deliveries SET state = 'leased', lease_id = @leaseId, visible_at = @until, attempts = attempts + 1
                    WHERE subscription = @name AND position = @position RETURNING attempts
                    """, new { name, position, leaseId, until }, transaction, cancellationToken: cancellationToken));
                leased.Add((position, leaseId, attempts));
            }
            var fresh = Math.Min(max - leased.Count, room - leased.Count);
            var rows = new Dictionary<long, EventRow>();
            if (fresh > 0 && (subscription.Mode == Competing || !anyPending))
            {
                // Read in this transaction, the head is committed and so is every position up to it.
                var head = await connection.ExecuteScalarAsync<long>(database.Command("SELECT position FROM events_head WHERE id = 1", transaction: transaction, cancellationToken: cancellationToken));
                var events = (await connection.QueryAsync<EventRow>(database.Command($"""
                    SELECT {EventColumns} FROM events_events e
                    WHERE e.position > @Dispatched AND e.position <= @head
                      AND (@StreamPrefix IS NULL OR substr(e.stream, 1, @prefixLength) = @StreamPrefix)
                      AND (@EventType IS NULL OR e.type = @EventType)
                    ORDER BY e.position LIMIT @fresh
                    """, new { subscription.Dispatched, head, subscription.StreamPrefix, prefixLength = subscription.StreamPrefix?.Length ?? 0, subscription.EventType, fresh },
                    transaction, cancellationToken: cancellationToken))).ToList();
                var newLeases = events.Select(e => (e.Position, LeaseId: Guid.NewGuid().ToString("N"), Attempt: 1)).ToList();
                await InsertLeasesAsync(connection, transaction, name, newLeases.Select(l => (l.Position, l.LeaseId)).ToList(), until, cancellationToken);
                leased.AddRange(newLeases);
                foreach (var e in events)
                {
                    rows[e.Position] = e;
                }
                var dispatched = events.Count == fresh ? events[^1].Position : head;
                await connection.ExecuteAsync(database.Command("UPDATE events_subscriptions SET dispatched = @dispatched WHERE name = @name",
                    new { name, dispatched }, transaction, cancellationToken: cancellationToken));
            }
            if (leased.Count == 0)
            {
                return [];
            }
            var missing = leased.Select(l => l.Position).Where(p => !rows.ContainsKey(p)).ToArray();
            if (missing.Length > 0)
            {
                foreach (var row in await connection.QueryAsync<EventRow>(database.Command(
                    $"SELECT {EventColumns} FROM events_events e WHERE {database.Dialect.InList("e.position", "positions")}",
                    new { positions = missing }, transaction, cancellationToken: cancellationToken)))
                {
                    rows[row.Position] = row;
                }
            }
            return leased.OrderBy(l => l.Position)
                .Select(l => new LeasedEvent(rows[l.Position].ToRecorded(), l.LeaseId, l.Attempt, DateTimeOffset.FromUnixTimeMilliseconds(until)))
                .ToList();
        }, cancellationToken);

    /// <summary>Inserts one leased delivery row per event, a chunk of rows per statement.</summary>
    private async Task InsertLeasesAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, string name,
        IReadOnlyList<(long Position, string LeaseId)> leases, long until, CancellationToken cancellationToken)
    {
        // As EventStore.InsertChunk: chunks of rows on PostgreSQL, one prepared row at a time on SQLite.
        var size = database.Dialect == SqlDialect.Postgres ? 250 : 1;
        for (var offset = 0; offset < leases.Count; offset += size)
        {
            var chunk = leases.Skip(offset).Take(size).ToList();
            var parameters = new DynamicParameters(new { name, until });
            var sql = new System.Text.StringBuilder("INSERT INTO events_deliveries (subscription, position, state, attempts, lease_id, visible_at) VALUES ");
            for (var i = 0; i < chunk.Count; i++)
            {
                sql.Append(i == 0 ? "" : ", ").Append(System.Globalization.CultureInfo.InvariantCulture, $"(@name, @p{i}, 'leased', 1, @l{i}, @until)");
                parameters.Add($"p{i}", chunk[i].Position);
                parameters.Add($"l{i}", chunk[i].LeaseId);
            }
            await connection.ExecuteAsync(database.Command(sql.ToString(), parameters, transaction, cancellationToken: cancellationToken));
        }
    }

    /// <summary>Acknowledges leased events: they are done. Returns the lease ids that no longer hold (ran out and handed out again, or unknown).</summary>
    public async Task<IReadOnlyList<string>> AckAsync(string name, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            var held = (await connection.QueryAsync<string>(database.Command(
                $"SELECT lease_id FROM events_deliveries WHERE subscription = @name AND state = 'leased' AND {database.Dialect.InList("lease_id", "leaseIds")}",
                new { name, leaseIds = leaseIds.ToArray() }, transaction, cancellationToken: cancellationToken))).ToHashSet(StringComparer.Ordinal);
            await connection.ExecuteAsync(database.Command(
                $"DELETE FROM events_deliveries WHERE subscription = @name AND state = 'leased' AND {database.Dialect.InList("lease_id", "leaseIds")}",
                new { name, leaseIds = leaseIds.ToArray() }, transaction, cancellationToken: cancellationToken));
            return (IReadOnlyList<string>)leaseIds.Where(id => !held.Contains(id)).ToList();
        }, cancellationToken);

    /// <summary>
    /// Gives leased events back: retried after <paramref name="retryAfter"/> (doubled per attempt up
    /// to <paramref name="retryMax"/> when <paramref name="backoff"/> is set), or parked when
    /// <paramref name="park"/> is set or the attempts are used up. Returns the lease ids that no longer hold.
    /// </summary>
    public async Task<IReadOnlyList<string>> NackAsync(string name, IReadOnlyList<string> leaseIds, string? reason, bool park, TimeSpan retryAfter, TimeSpan retryMax, bool backoff, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            var maxAttempts = await connection.ExecuteScalarAsync<int?>(database.Command("SELECT max_attempts FROM events_subscriptions WHERE name = @name", new { name }, transaction, cancellationToken: cancellationToken)) ?? 1;
            var held = (await connection.QueryAsync<(string LeaseId, long Position, long Attempts)>(database.Command(
                $"SELECT lease_id, position, attempts FROM events_deliveries WHERE subscription = @name AND state = 'leased' AND {database.Dialect.InList("lease_id", "leaseIds")}",
                new { name, leaseIds = leaseIds.ToArray() }, transaction, cancellationToken: cancellationToken))).ToList();
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            foreach (var (_, position, attempts) in held)
            {
                var parks = park || attempts >= maxAttempts;
                var delay = backoff ? TimeSpan.FromTicks(Math.Min(retryMax.Ticks, retryAfter.Ticks * (1L << (int)Math.Min(20, attempts - 1)))) : retryAfter;
                await connection.ExecuteAsync(database.Command("""
                    UPDATE events_deliveries SET state = @state, parked_at = @parkedAt, visible_at = @visibleAt, lease_id = NULL, last_error = @reason,
                        first_failure_at = COALESCE(first_failure_at, @now), last_failure_at = @now
                    WHERE subscription = @name AND position = @position
                    """, new { name, position, state = parks ? Parked : Ready, parkedAt = parks ? now : (long?)null, visibleAt = now + (long)delay.TotalMilliseconds, reason, now },
                    transaction, cancellationToken: cancellationToken));
            }
            var found = held.Select(h => h.LeaseId).ToHashSet(StringComparer.Ordinal);
            return (IReadOnlyList<string>)leaseIds.Where(id => !found.Contains(id)).ToList();
        }, cancellationToken);

    /// <summary>Gives leased events back untried: ready at once, the attempt their lease took given back. Returns the lease ids that no longer hold.</summary>
    public async Task<IReadOnlyList<string>> ReleaseAsync(string name, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            var held = (await connection.QueryAsync<string>(database.Command(
                $"SELECT lease_id FROM events_deliveries WHERE subscription = @name AND state = 'leased' AND {database.Dialect.InList("lease_id", "leaseIds")}",
                new { name, leaseIds = leaseIds.ToArray() }, transaction, cancellationToken: cancellationToken))).ToHashSet(StringComparer.Ordinal);
            await connection.ExecuteAsync(database.Command($"""
                UPDATE events_deliveries SET state = 'ready', lease_id = NULL, visible_at = @now, attempts = attempts - 1
                WHERE subscription = @name AND state = 'leased' AND {database.Dialect.InList("lease_id", "leaseIds")}
                """, new { name, leaseIds = leaseIds.ToArray(), now = time.GetUtcNow().ToUnixTimeMilliseconds() }, transaction, cancellationToken: cancellationToken));
            return (IReadOnlyList<string>)leaseIds.Where(id => !held.Contains(id)).ToList();
        }, cancellationToken);

    public async Task<IReadOnlyList<ParkedEvent>> ParkedAsync(string name, long after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<ParkedRow>(database.Command($"""
            SELECT {EventColumns}, d.attempts AS Attempts, d.last_error AS Reason, d.first_failure_at AS FirstFailureAt, d.last_failure_at AS LastFailureAt, d.parked_at AS ParkedAt
            FROM events_deliveries d JOIN events_events e ON e.position = d.position
            WHERE d.subscription = @name AND d.state = 'parked' AND d.position > @after ORDER BY d.position LIMIT @take
            """, new { name, after, take }, cancellationToken: cancellationToken));
        return rows.Select(r => new ParkedEvent(r.ToRecorded(), r.Attempts, r.Reason,
            DateTimeOffset.FromUnixTimeMilliseconds(r.FirstFailureAt ?? r.ParkedAt), DateTimeOffset.FromUnixTimeMilliseconds(r.LastFailureAt ?? r.ParkedAt),
            DateTimeOffset.FromUnixTimeMilliseconds(r.ParkedAt))).ToList();
    }

    /// <summary>
    /// Makes parked events deliverable again with fresh attempts: the listed positions, or all when
    /// null. Only events parked right now move, so replaying twice sends nothing twice.
    /// </summary>
    public async Task<int> ReplayAsync(string name, IReadOnlyList<long>? positions, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var filter = positions is null ? "" : "AND " + database.Dialect.InList("position", "positions");
            return await connection.ExecuteAsync(database.Command($"""
                UPDATE events_deliveries SET state = 'ready', attempts = 0, visible_at = @now, parked_at = NULL
                WHERE subscription = @name AND state = 'parked' {filter}
                """, new { name, now, positions = positions?.ToArray() ?? [] }, transaction, cancellationToken: cancellationToken));
        }, cancellationToken);

    /// <summary>
    /// Where the subscription stands: the checkpoint (every matching event up to it acknowledged or
    /// parked), what is outstanding, and how far behind the head it is in positions and seconds.
    /// </summary>
    public async Task<SubscriptionProgress> ProgressAsync(SubscriptionDefinition subscription, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var counts = (await connection.QueryAsync<(string State, long Count, long Oldest)>(database.Command(
            "SELECT state, COUNT(*), MIN(position) FROM events_deliveries WHERE subscription = @Name GROUP BY state", new { subscription.Name }, cancellationToken: cancellationToken)))
            .ToDictionary(r => r.State, StringComparer.Ordinal);
        var head = await connection.ExecuteScalarAsync<long>(database.Command("SELECT position FROM events_head WHERE id = 1", cancellationToken: cancellationToken));
        var dispatched = await connection.ExecuteScalarAsync<long>(database.Command("SELECT dispatched FROM events_subscriptions WHERE name = @Name", new { subscription.Name }, cancellationToken: cancellationToken));
        var oldestOutstanding = new[] { Leased, Ready }.Where(counts.ContainsKey).Select(state => (long?)counts[state].Oldest).Min();
        var checkpoint = oldestOutstanding is { } o ? o - 1 : dispatched;
        // The oldest event the subscription still owes: outstanding, or the first matching one not dispatched yet.
        var owed = oldestOutstanding ?? await connection.ExecuteScalarAsync<long?>(database.Command("""
            SELECT MIN(position) FROM events_events WHERE position > @dispatched
              AND (@StreamPrefix IS NULL OR substr(stream, 1, @prefixLength) = @StreamPrefix)
              AND (@EventType IS NULL OR type = @EventType)
            """, new { dispatched, subscription.StreamPrefix, prefixLength = subscription.StreamPrefix?.Length ?? 0, subscription.EventType }, cancellationToken: cancellationToken));
        var lagSeconds = 0.0;
        if (owed is { } position)
        {
            var recordedAt = await connection.ExecuteScalarAsync<long>(database.Command("SELECT recorded_at FROM events_events WHERE position = @position", new { position }, cancellationToken: cancellationToken));
            lagSeconds = Math.Max(0, (time.GetUtcNow().ToUnixTimeMilliseconds() - recordedAt) / 1000.0);
        }
        return new SubscriptionProgress(checkpoint, head, owed is null ? 0 : head - checkpoint, lagSeconds,
            counts.GetValueOrDefault(Leased).Count, counts.GetValueOrDefault(Ready).Count, counts.GetValueOrDefault(Parked).Count);
    }

    private sealed class ParkedRow : EventRow
    {
        public int Attempts { get; init; }
        public string? Reason { get; init; }
        public long? FirstFailureAt { get; init; }
        public long? LastFailureAt { get; init; }
        public long ParkedAt { get; init; }
    }
}

/// <summary>A subscription as stored.</summary>
internal sealed record SubscriptionDefinition
{
    public required string Name { get; init; }
    public string? StreamPrefix { get; init; }
    public string? EventType { get; init; }
    public required string Mode { get; init; }
    public int MaxAttempts { get; init; }

    /// <summary>Every matching event up to this position has a delivery row or was acknowledged.</summary>
    public long Dispatched { get; init; }
    public long CreatedAt { get; init; }
    public string? CreatedBy { get; init; }
}
