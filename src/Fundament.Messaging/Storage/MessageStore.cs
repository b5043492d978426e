using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Dapper;

namespace Fundament.Messaging.Storage;

internal enum GroupCreation { Created, Exists, OverLimit }

/// <summary>
/// The embedded transport: topics' messages, consumer groups and their deliveries in SQL tables
/// (<c>messaging_*</c>). Publishing stores the message and one delivery row per group of the topic in
/// one transaction; a pull leases due rows (<c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL, so replicas
/// pulling one group never wait on each other or take the same row); an ack deletes the row; a
/// nack schedules a retry or turns the row into a dead letter. The row of a dead letter stays
/// where it was, so in an ordered group it keeps holding back the later messages of its key.
/// </summary>
internal sealed class MessageStore(IDatabase database, TimeProvider time)
{
    public const string Ready = "ready";
    public const string Leased = "leased";
    public const string Dead = "dead";

    private const string GroupColumns = "topic AS Topic, name AS Name, max_attempts AS MaxAttempts, backoff_initial_ms AS BackoffInitialMs, backoff_max_ms AS BackoffMaxMs, ordered AS Ordered, dead_letter AS DeadLetter, created_at AS CreatedAt, created_by AS CreatedBy, push_url AS PushUrl, push_secret AS PushSecret";

    /// <summary>
    /// Stores each message for every group of its topic, durably, in one transaction (one commit for
    /// the lot: see <see cref="PublishWriter"/>), unless a message with its id is stored already (then
    /// the original's sequence, as a duplicate). Results are in the order of <paramref name="batch"/>.
    /// </summary>
    /// <param name="orderedGroupsOnly">
    /// Deliveries only for the topic's ordered groups, and nothing at all when it has none (the RabbitMQ
    /// transport: its queues carry the unordered groups' messages; ordered groups live here).
    /// </param>
    public async Task<IReadOnlyList<(long Sequence, bool Duplicate)>> PublishAsync(IReadOnlyList<(string Topic, OutgoingMessage Message, string? PublishedBy)> batch, CancellationToken cancellationToken,
        bool orderedGroupsOnly = false)
    {
        if (orderedGroupsOnly)
        {
            // A read first: a topic without ordered groups (the common case) costs no write transaction.
            await using var reader = await database.OpenAsync(cancellationToken);
            var topics = batch.Select(b => b.Topic).Distinct(StringComparer.Ordinal).ToArray();
            if (await reader.ExecuteScalarAsync<int?>(database.Command($"SELECT 1 FROM messaging_groups WHERE {database.Dialect.InList("topic", "topics")} AND ordered = 1 LIMIT 1",
                new { topics }, cancellationToken: cancellationToken)) is null)
            {
                return batch.Select(_ => (0L, false)).ToList();
            }
        }
        var groupFilter = orderedGroupsOnly ? " AND ordered = 1" : "";
        try
        {
            return await database.InTransactionAsync(async (connection, transaction) =>
            {
                var now = time.GetUtcNow().ToUnixTimeMilliseconds();
                if (database.Dialect == SqlDialect.Postgres)
                {
                    // One key's publishes take turns until commit, so their sequence numbers follow their
                    // commit order and an ordered group never sees a later message of a key before an
                    // earlier one commits (SQLite serialises writers anyway).
                    var lockKeys = batch.Where(b => b.Message.Key is not null).Select(b => b.Topic + "\n" + b.Message.Key).Distinct(StringComparer.Ordinal).ToArray();
                    if (lockKeys.Length > 0)
                    {
                        // One statement for all, in hash order (the lock's identity), so two batches cannot deadlock.
                        await connection.ExecuteAsync(database.Command("""
                            SELECT pg_advisory_xact_lock(@space, h) FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(@lockKeys) AS k ORDER BY h) AS keys
                            """, new { space = KeyLockSpace, lockKeys }, transaction, cancellationToken: cancellationToken));
                    }
                }
                if (database.Dialect == SqlDialect.Postgres && batch.Count > 1)
                {
                    return await PublishRowsAsync(connection, transaction, batch, now, groupFilter, cancellationToken);
                }
                var results = new List<(long, bool)>(batch.Count);
                foreach (var (topic, message, publishedBy) in batch)
                {
                    var seq = await connection.ExecuteScalarAsync<long?>(database.Command("""
                        INSERT INTO messaging_messages (topic, id, msg_key, body, headers, bytes, published_at, published_by)
                        VALUES (@topic, @Id, @Key, @Body, @Headers, @Bytes, @now, @publishedBy)
                        ON CONFLICT (topic, id) DO NOTHING RETURNING seq
                        """, new { topic, message.Id, message.Key, message.Body, message.Headers, message.Bytes, now, publishedBy }, transaction, cancellationToken: cancellationToken));
                    if (seq is not { } sequence)
                    {
                        results.Add((await SequenceOfAsync(connection, transaction, topic, message.Id, cancellationToken), true));
                        continue;
                    }
                    // The groups share-locked: a group being deleted either finishes first (and gets nothing)
                    // or waits for this commit (and deletes what this wrote), so no delivery outlives its group.
                    await connection.ExecuteAsync(database.Command($"""
                        INSERT INTO messaging_deliveries (topic, grp, seq, msg_key, state, attempts, visible_at)
                        SELECT topic, name, @sequence, @Key, 'ready', 0, @now FROM messaging_groups WHERE topic = @topic{groupFilter}{ForShare}
                        """, new { topic, sequence, message.Key, now }, transaction, cancellationToken: cancellationToken));
                    results.Add((sequence, false));
                }
                return (IReadOnlyList<(long, bool)>)results;
            }, cancellationToken);
        }
        catch (Exception ex) when (database.Dialect.IsUniqueViolation(ex) && batch.Count == 1)
        {
            // Lost a race with a concurrent publish of the same id (ON CONFLICT covers the committed case).
            await using var connection = await database.OpenAsync(cancellationToken);
            return [(await SequenceOfAsync(connection, null, batch[0].Topic, batch[0].Message.Id, cancellationToken), true)];
        }
    }

    /// <summary>Rows per statement of a batched publish on PostgreSQL.</summary>
    private const int PublishChunk = 200;

    /// <summary>
    /// A batch on PostgreSQL: the messages in multi-row INSERTs, then their deliveries for every group
    /// in one INSERT ... SELECT per chunk, so a batch costs a few round trips whatever its size.
    /// A message id repeated within the batch is stored once; the later ones are duplicates.
    /// </summary>
    private async Task<IReadOnlyList<(long, bool)>> PublishRowsAsync(DbConnection connection, DbTransaction transaction,
        IReadOnlyList<(string Topic, OutgoingMessage Message, string? PublishedBy)> batch, long now, string groupFilter, CancellationToken cancellationToken)
    {
        var stored = new Dictionary<(string, string), long>();
        for (var offset = 0; offset < batch.Count; offset += PublishChunk)
        {
            var chunk = batch.Skip(offset).Take(PublishChunk).ToList();
            var sql = new StringBuilder("INSERT INTO messaging_messages (topic, id, msg_key, body, headers, bytes, published_at, published_by) VALUES ");
            var parameters = new DynamicParameters(new { now });
            for (var i = 0; i < chunk.Count; i++)
            {
                sql.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@t{i}, @i{i}, @k{i}, @b{i}, @h{i}, @n{i}, @now, @p{i})");
                var (topic, message, publishedBy) = chunk[i];
                parameters.Add($"t{i}", topic);
                parameters.Add($"i{i}", message.Id);
                parameters.Add($"k{i}", message.Key, System.Data.DbType.String);
                parameters.Add($"b{i}", message.Body);
                parameters.Add($"h{i}", message.Headers, System.Data.DbType.String);
                parameters.Add($"n{i}", message.Bytes);
                parameters.Add($"p{i}", publishedBy, System.Data.DbType.String);
            }
            sql.Append(" ON CONFLICT (topic, id) DO NOTHING RETURNING topic, id, seq");
            foreach (var (topic, id, seq) in await connection.QueryAsync<(string, string, long)>(database.Command(sql.ToString(), parameters, transaction, cancellationToken: cancellationToken)))
            {
                stored[(topic, id)] = seq;
            }
        }
        // Deliveries for the messages stored now (the first of each id), every group of their topic, share-locked as in PublishAsync.
        var fresh = new List<(string Topic, string? Key, long Seq)>();
        var claimed = new HashSet<(string, string)>();
        var results = new List<(long, bool)>(batch.Count);
        foreach (var (topic, message, _) in batch)
        {
            if (stored.TryGetValue((topic, message.Id), out var seq) && claimed.Add((topic, message.Id)))
            {
                fresh.Add((topic, message.Key, seq));
                results.Add((seq, false));
            }
            else
            {
                results.Add((seq == 0 ? await SequenceOfAsync(connection, transaction, topic, message.Id, cancellationToken) : seq, true));
            }
        }
        for (var offset = 0; offset < fresh.Count; offset += PublishChunk)
        {
            var chunk = fresh.Skip(offset).Take(PublishChunk).ToList();
            var values = new StringBuilder();
            var parameters = new DynamicParameters(new { now });
            for (var i = 0; i < chunk.Count; i++)
            {
                values.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@t{i}, CAST(@s{i} AS BIGINT), CAST(@k{i} AS TEXT))");
                parameters.Add($"t{i}", chunk[i].Topic);
                parameters.Add($"s{i}", chunk[i].Seq);
                parameters.Add($"k{i}", chunk[i].Key, System.Data.DbType.String);
            }
            await connection.ExecuteAsync(database.Command($"""
                INSERT INTO messaging_deliveries (topic, grp, seq, msg_key, state, attempts, visible_at)
                SELECT g.topic, g.name, v.seq, v.k, 'ready', 0, @now
                FROM messaging_groups g JOIN (VALUES {values}) AS v(topic, seq, k) ON g.topic = v.topic{groupFilter.Replace("ordered", "g.ordered", StringComparison.Ordinal)}
                FOR SHARE OF g
                """, parameters, transaction, cancellationToken: cancellationToken));
        }
        return results;
    }

    /// <summary>The first key of the two-key advisory locks that order one key's publishes (PostgreSQL).</summary>
    private const int KeyLockSpace = 0x6D736731;

    private string ForShare => database.Dialect == SqlDialect.Postgres ? " FOR SHARE" : "";

    /// <summary>
    /// "The group checked is still the group": a statement acting on a group acts only while the
    /// group that was authorised exists, not on one deleted and created again under its name since.
    /// </summary>
    private const string SameGroup = """
        EXISTS (SELECT 1 FROM messaging_groups g WHERE g.topic = @Topic AND g.name = @Name AND g.created_at = @CreatedAt AND COALESCE(g.created_by, '') = COALESCE(@CreatedBy, ''))
        """;

    private async Task<long> SequenceOfAsync(DbConnection connection, DbTransaction? transaction, string topic, string id, CancellationToken cancellationToken) =>
        await connection.ExecuteScalarAsync<long>(database.Command("SELECT seq FROM messaging_messages WHERE topic = @topic AND id = @id", new { topic, id }, transaction, cancellationToken: cancellationToken));

    /// <summary>
    /// Creates the group unless it exists (then returns it as it is) or <paramref name="createdBy"/>
    /// created <paramref name="limit"/> groups already.
    /// </summary>
    public async Task<(GroupCreation Outcome, GroupDefinition? Group)> CreateGroupAsync(GroupDefinition group, int limit, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            if (await FindGroupAsync(connection, transaction, group.Topic, group.Name, cancellationToken) is { } existing)
            {
                return (GroupCreation.Exists, existing);
            }
            if (group.CreatedBy is { } createdBy)
            {
                // The principal's row, locked by the upsert: one principal's creates take turns, so two
                // at once cannot both take the last place (SQLite serialises writers anyway).
                await connection.ExecuteAsync(database.Command("""
                    INSERT INTO messaging_principals (actor, groups_created) VALUES (@createdBy, 0)
                    ON CONFLICT (actor) DO UPDATE SET groups_created = messaging_principals.groups_created
                    """, new { createdBy }, transaction, cancellationToken: cancellationToken));
                var held = await connection.ExecuteScalarAsync<int>(database.Command(
                    "SELECT COUNT(*) FROM messaging_groups WHERE created_by = @createdBy", new { createdBy }, transaction, cancellationToken: cancellationToken));
                if (held >= limit)
                {
                    return (GroupCreation.OverLimit, (GroupDefinition?)null);
                }
            }
            var inserted = await connection.ExecuteAsync(database.Command("""
                INSERT INTO messaging_groups (topic, name, max_attempts, backoff_initial_ms, backoff_max_ms, ordered, dead_letter, created_at, created_by, push_url, push_secret)
                VALUES (@Topic, @Name, @MaxAttempts, @BackoffInitialMs, @BackoffMaxMs, @Ordered, @DeadLetter, @CreatedAt, @CreatedBy, @PushUrl, @PushSecret)
                ON CONFLICT (topic, name) DO NOTHING
                """, group, transaction, cancellationToken: cancellationToken));
            var stored = await FindGroupAsync(connection, transaction, group.Topic, group.Name, cancellationToken);
            return (inserted == 1 ? GroupCreation.Created : GroupCreation.Exists, stored);
        }, cancellationToken);

    public async Task<GroupDefinition?> FindGroupAsync(string topic, string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await FindGroupAsync(connection, null, topic, name, cancellationToken);
    }

    private async Task<GroupDefinition?> FindGroupAsync(DbConnection connection, DbTransaction? transaction, string topic, string name, CancellationToken cancellationToken) =>
        await connection.QuerySingleOrDefaultAsync<GroupDefinition>(database.Command(
            $"SELECT {GroupColumns} FROM messaging_groups WHERE topic = @topic AND name = @name", new { topic, name }, transaction, cancellationToken: cancellationToken));

    /// <summary>Every push group, by topic and name (the push dispatcher's work list).</summary>
    public async Task<IReadOnlyList<GroupDefinition>> PushGroupsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<GroupDefinition>(database.Command(
            $"SELECT {GroupColumns} FROM messaging_groups WHERE push_url IS NOT NULL ORDER BY topic, name", cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>Groups by topic and name, after the cursor <c>topic/name</c>; of one topic when given.</summary>
    public async Task<IReadOnlyList<GroupDefinition>> ListGroupsAsync(string? topic, string? afterTopic, string? afterName, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<GroupDefinition>(database.Command($"""
            SELECT {GroupColumns} FROM messaging_groups
            WHERE (@topic IS NULL OR topic = @topic)
              AND (@afterTopic IS NULL OR topic > @afterTopic OR (topic = @afterTopic AND name > @afterName))
            ORDER BY topic, name LIMIT @take
            """, new { topic, afterTopic, afterName = afterName ?? "", take }, cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>Removes a group with everything it has not acknowledged, dead letters included.</summary>
    public async Task<bool> DeleteGroupAsync(string topic, string name, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            // The group row first: it waits for publishes holding it share-locked, so the deliveries they wrote are deleted below.
            var deleted = await connection.ExecuteAsync(database.Command("DELETE FROM messaging_groups WHERE topic = @topic AND name = @name", new { topic, name }, transaction, cancellationToken: cancellationToken)) == 1;
            await connection.ExecuteAsync(database.Command("DELETE FROM messaging_deliveries WHERE topic = @topic AND grp = @name", new { topic, name }, transaction, cancellationToken: cancellationToken));
            return deleted;
        }, cancellationToken);

    /// <summary>
    /// Leases up to <paramref name="max"/> due messages of the group, oldest first. A lease that ran
    /// out on the last attempt makes its message a dead letter (or drops it) instead. In an ordered
    /// group a message is due only when no earlier message of its key is still held (leased, waiting
    /// for a retry or dead), so a key is delivered one message at a time, in order.
    /// </summary>
    public async Task<PullOutcome> PullAsync(GroupDefinition group, int max, long maxBytes, TimeSpan lease, CancellationToken cancellationToken)
    {
        // A read first: an idle group (the common case for a waiting pull) costs no write transaction,
        // so long-polling consumers do not queue for SQLite's single writer.
        await using (var reader = await database.OpenAsync(cancellationToken))
        {
            if (await reader.ExecuteScalarAsync<long?>(database.Command(
                "SELECT seq FROM messaging_deliveries WHERE topic = @Topic AND grp = @Name AND state <> 'dead' AND visible_at <= @now LIMIT 1",
                new { group.Topic, group.Name, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken)) is null)
            {
                return new PullOutcome([], 0, group.IsDeadLettering);
            }
        }
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var until = now + (long)lease.TotalMilliseconds;
            var args = new { group.Topic, group.Name, group.CreatedAt, group.CreatedBy, now, until, group.MaxAttempts, max };
            // The group authorised, share-locked: not deleted (or replaced) while this pull leases from it.
            if (await connection.ExecuteScalarAsync<int?>(database.Command($"""
                SELECT 1 FROM messaging_groups WHERE topic = @Topic AND name = @Name AND created_at = @CreatedAt AND COALESCE(created_by, '') = COALESCE(@CreatedBy, ''){ForShare}
                """, args, transaction, cancellationToken: cancellationToken)) is null)
            {
                return new PullOutcome([], 0, group.IsDeadLettering);
            }

            var keyOrder = group.IsOrdered ? """
                AND (d.msg_key IS NULL OR NOT EXISTS (SELECT 1 FROM messaging_deliveries e
                     WHERE e.topic = d.topic AND e.grp = d.grp AND e.msg_key = d.msg_key AND e.seq < d.seq))
                """ : "";
            // In sequence order through the index of rows that are not dead letters (messaging_deliveries_pending):
            // a pull reads about as many rows as it hands out, however long the backlog or the dead-letter queue.
            var candidates = (await connection.QueryAsync<(long Seq, string State, long Attempts)>(database.Command($"""
                SELECT d.seq, d.state, d.attempts FROM messaging_deliveries d
                WHERE d.topic = @Topic AND d.grp = @Name AND d.state <> 'dead' AND d.visible_at <= @now {keyOrder}
                ORDER BY d.seq LIMIT @max{database.Dialect.SkipLocked}
                """, args, transaction, cancellationToken: cancellationToken))).ToList();

            // A lease that ran out on the last attempt makes its message a dead letter (or drops it) instead of handing it out again.
            var spent = candidates.Where(c => c.State == Leased && c.Attempts >= group.MaxAttempts).Select(c => c.Seq).ToArray();
            var expired = spent.Length == 0 ? 0 : group.IsDeadLettering
                ? await connection.ExecuteAsync(database.Command($"""
                    UPDATE messaging_deliveries SET state = 'dead', dead_at = @now, lease_id = NULL,
                        reason = 'The lease ran out on the last attempt.', exception_type = NULL,
                        first_failure_at = COALESCE(first_failure_at, @now), last_failure_at = @now
                    WHERE topic = @Topic AND grp = @Name AND {database.Dialect.InList("seq", "spent")}
                    """, new { group.Topic, group.Name, now, spent }, transaction, cancellationToken: cancellationToken))
                : await connection.ExecuteAsync(database.Command($"""
                    DELETE FROM messaging_deliveries WHERE topic = @Topic AND grp = @Name AND {database.Dialect.InList("seq", "spent")}
                    """, new { group.Topic, group.Name, spent }, transaction, cancellationToken: cancellationToken));
            var due = candidates.Where(c => !(c.State == Leased && c.Attempts >= group.MaxAttempts)).Select(c => c.Seq).ToArray();
            if (due.Length == 0)
            {
                return new PullOutcome([], expired, group.IsDeadLettering);
            }
            // Sizes first, so one pull answers with at most maxBytes of messages (and always at least one).
            var sizes = (await connection.QueryAsync<(long Seq, long Bytes)>(database.Command(
                $"SELECT seq, bytes FROM messaging_messages WHERE {database.Dialect.InList("seq", "due")} ORDER BY seq",
                new { due }, transaction, cancellationToken: cancellationToken))).ToList();
            long total = 0;
            due = sizes.TakeWhile((m, i) => (total += m.Bytes) <= maxBytes || i == 0).Select(m => m.Seq).ToArray();
            var pull = Guid.NewGuid().ToString("N");
            var leased = (await connection.QueryAsync<(long Seq, long Attempts)>(database.Command($"""
                UPDATE messaging_deliveries SET state = 'leased', lease_id = @pull || '.' || CAST(seq AS TEXT), visible_at = @until, attempts = attempts + 1
                WHERE topic = @Topic AND grp = @Name AND {database.Dialect.InList("seq", "due")}
                RETURNING seq, attempts
                """, new { group.Topic, group.Name, until, pull, due }, transaction, cancellationToken: cancellationToken))).ToDictionary(r => r.Seq, r => (int)r.Attempts);
            var messages = await connection.QueryAsync<MessageRow>(database.Command($"""
                SELECT seq AS Seq, id AS Id, msg_key AS MsgKey, body AS Body, headers AS Headers, published_at AS PublishedAt
                FROM messaging_messages WHERE {database.Dialect.InList("seq", "due")} ORDER BY seq
                """, new { due }, transaction, cancellationToken: cancellationToken));
            var leasedUntil = DateTimeOffset.FromUnixTimeMilliseconds(until);
            return new PullOutcome(messages.Select(m => new LeasedMessage(m.Id, group.Topic, m.Seq, m.MsgKey, Parse(m.Body), ParseHeaders(m.Headers),
                DateTimeOffset.FromUnixTimeMilliseconds(m.PublishedAt), leased[m.Seq], LeaseId(pull, m.Seq), leasedUntil)).ToList(), expired, group.IsDeadLettering);
        }, cancellationToken);
    }

    private static string LeaseId(string pull, long seq) => pull + "." + seq.ToString(CultureInfo.InvariantCulture);

    /// <summary>The sequence a lease id names, or null when it is not one this store hands out.</summary>
    internal static long? SequenceOf(string leaseId)
    {
        var dot = leaseId.IndexOf('.', StringComparison.Ordinal);
        return dot == 32 && leaseId.AsSpan(0, 32).ContainsAnyExcept("0123456789abcdef") == false && long.TryParse(leaseId.AsSpan(dot + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var seq) ? seq : null;
    }

    /// <summary>Acknowledges leased messages: done for this group. Returns the lease ids that no longer hold.</summary>
    public async Task<IReadOnlyList<string>> AckAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken)
    {
        var valid = leaseIds.Where(id => SequenceOf(id) is not null).ToArray();
        if (valid.Length == 0)
        {
            return leaseIds;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var settled = (await connection.QueryAsync<string>(database.Command($"""
            DELETE FROM messaging_deliveries
            WHERE topic = @Topic AND grp = @Name AND {database.Dialect.InList("seq", "seqs")} AND state = 'leased' AND {database.Dialect.InList("lease_id", "valid")}
              AND {SameGroup}
            RETURNING lease_id
            """, new { group.Topic, group.Name, group.CreatedAt, group.CreatedBy, seqs = valid.Select(id => SequenceOf(id)!.Value).ToArray(), valid }, cancellationToken: cancellationToken))).ToHashSet(StringComparer.Ordinal);
        return leaseIds.Where(id => !settled.Contains(id)).ToList();
    }

    /// <summary>
    /// Gives leased messages back: retried after the group's backoff (or <paramref name="retryAfter"/>),
    /// or dead-lettered when <paramref name="deadLetter"/> is set or the attempts are used up (dropped
    /// instead when the group keeps no dead letters). Returns the lease ids that no longer hold, and
    /// how many messages were dead-lettered and dropped.
    /// </summary>
    public async Task<NackOutcome> NackAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, string? reason, string? exceptionType, bool deadLetter,
        TimeSpan? retryAfter, TimeSpan maxDelay, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            var valid = leaseIds.Where(id => SequenceOf(id) is not null).ToArray();
            // Locked as read: a pull cannot hand a row to another consumer between this read and the writes below.
            var held = valid.Length == 0 ? [] : (await connection.QueryAsync<(string LeaseId, long Seq, long Attempts)>(database.Command($"""
                SELECT lease_id, seq, attempts FROM messaging_deliveries
                WHERE topic = @Topic AND grp = @Name AND {database.Dialect.InList("seq", "seqs")} AND state = 'leased' AND {database.Dialect.InList("lease_id", "valid")}
                  AND {SameGroup}{database.Dialect.ForUpdate}
                """, new { group.Topic, group.Name, group.CreatedAt, group.CreatedBy, seqs = valid.Select(id => SequenceOf(id)!.Value).ToArray(), valid }, transaction, cancellationToken: cancellationToken))).ToList();
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            int dead = 0, dropped = 0;
            foreach (var (leaseId, seq, attempts) in held)
            {
                var gone = deadLetter || attempts >= group.MaxAttempts;
                if (gone && !group.IsDeadLettering)
                {
                    dropped += await connection.ExecuteAsync(database.Command("DELETE FROM messaging_deliveries WHERE topic = @Topic AND grp = @Name AND seq = @seq AND state = 'leased' AND lease_id = @leaseId",
                        new { group.Topic, group.Name, seq, leaseId }, transaction, cancellationToken: cancellationToken));
                    continue;
                }
                var delay = retryAfter ?? group.BackoffFor((int)attempts);
                delay = delay > maxDelay ? maxDelay : delay;
                await connection.ExecuteAsync(database.Command("""
                    UPDATE messaging_deliveries SET state = @state, dead_at = @deadAt, visible_at = @visibleAt, lease_id = NULL, reason = @reason, exception_type = @exceptionType,
                        first_failure_at = COALESCE(first_failure_at, @now), last_failure_at = @now
                    WHERE topic = @Topic AND grp = @Name AND seq = @seq AND state = 'leased' AND lease_id = @leaseId
                    """, new { group.Topic, group.Name, seq, leaseId, state = gone ? Dead : Ready, deadAt = gone ? now : (long?)null, visibleAt = now + (long)delay.TotalMilliseconds, reason, exceptionType, now },
                    transaction, cancellationToken: cancellationToken));
                dead += gone ? 1 : 0;
            }
            var found = held.Select(h => h.LeaseId).ToHashSet(StringComparer.Ordinal);
            return new NackOutcome(leaseIds.Where(id => !found.Contains(id)).ToList(), dead, dropped);
        }, cancellationToken);

    /// <summary>Gives leased messages back untried: ready at once, the attempt their lease took given back. Returns the lease ids that no longer hold.</summary>
    public async Task<IReadOnlyList<string>> ReleaseAsync(GroupDefinition group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            var valid = leaseIds.Where(id => SequenceOf(id) is not null).ToArray();
            var args = new { group.Topic, group.Name, group.CreatedAt, group.CreatedBy, now = time.GetUtcNow().ToUnixTimeMilliseconds(), seqs = valid.Select(id => SequenceOf(id)!.Value).ToArray(), valid };
            var where = $"topic = @Topic AND grp = @Name AND {database.Dialect.InList("seq", "seqs")} AND state = 'leased' AND {database.Dialect.InList("lease_id", "valid")} AND {SameGroup}";
            var held = valid.Length == 0 ? [] : (await connection.QueryAsync<string>(database.Command($"SELECT lease_id FROM messaging_deliveries WHERE {where}{database.Dialect.ForUpdate}", args, transaction,
                cancellationToken: cancellationToken))).ToHashSet(StringComparer.Ordinal);
            if (held.Count > 0)
            {
                await connection.ExecuteAsync(database.Command($"UPDATE messaging_deliveries SET state = 'ready', lease_id = NULL, visible_at = @now, attempts = attempts - 1 WHERE {where}",
                    args, transaction, cancellationToken: cancellationToken));
            }
            return (IReadOnlyList<string>)leaseIds.Where(id => !held.Contains(id)).ToList();
        }, cancellationToken);

    /// <summary>
    /// Dead letters in topic, group and sequence order, after the cursor; of one topic, group or key
    /// when given, and only of groups <paramref name="owner"/> created when it is set.
    /// </summary>
    /// <remarks>Stops early once the bodies and headers of what it returns exceed <paramref name="maxBytes"/> (always returning at least one).</remarks>
    public async Task<(IReadOnlyList<DeadLetter> Rows, bool Trimmed)> DeadLettersAsync(string? topic, string? group, string? key, string? owner, DeadLetterCursor? after, int take, long maxBytes, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<DeadLetterRow>(database.Command("""
            SELECT d.topic AS Topic, d.grp AS Grp, d.seq AS Seq, m.id AS MessageId, d.msg_key AS MsgKey, m.body AS Body, m.headers AS Headers,
                   d.reason AS Reason, d.exception_type AS ExceptionType, d.attempts AS Attempts, m.published_at AS PublishedAt,
                   d.first_failure_at AS FirstFailureAt, d.last_failure_at AS LastFailureAt, d.dead_at AS DeadAt,
                   CASE WHEN d.msg_key IS NULL THEN 0 ELSE (SELECT COUNT(*) FROM messaging_deliveries b
                        WHERE b.topic = d.topic AND b.grp = d.grp AND b.msg_key = d.msg_key AND b.seq > d.seq AND b.state <> 'dead') END AS Blocking,
                   g.ordered AS Ordered, m.bytes AS Bytes
            FROM messaging_deliveries d
            JOIN messaging_messages m ON m.seq = d.seq
            JOIN messaging_groups g ON g.topic = d.topic AND g.name = d.grp
            WHERE d.state = 'dead'
              AND (@topic IS NULL OR d.topic = @topic) AND (@group IS NULL OR d.grp = @group) AND (@key IS NULL OR d.msg_key = @key)
              AND (@owner IS NULL OR g.created_by = @owner)
              AND (@afterTopic IS NULL OR d.topic > @afterTopic OR (d.topic = @afterTopic AND (d.grp > @afterGroup OR (d.grp = @afterGroup AND d.seq > @afterSeq))))
            ORDER BY d.topic, d.grp, d.seq LIMIT @take
            """, new { topic, group, key, owner, afterTopic = after?.Topic, afterGroup = after?.Group ?? "", afterSeq = after?.Sequence ?? 0, take }, cancellationToken: cancellationToken));
        long total = 0;
        var all = rows.ToList();
        var kept = all.TakeWhile((r, i) => (total += r.Bytes) <= maxBytes || i == 0).ToList();
        return (kept.Select(r => new DeadLetter(r.Topic, r.Grp, r.Seq, r.MessageId, r.MsgKey, Parse(r.Body), ParseHeaders(r.Headers), r.Reason, r.ExceptionType, r.Attempts,
            DateTimeOffset.FromUnixTimeMilliseconds(r.PublishedAt), DateTimeOffset.FromUnixTimeMilliseconds(r.FirstFailureAt ?? r.DeadAt),
            DateTimeOffset.FromUnixTimeMilliseconds(r.LastFailureAt ?? r.DeadAt), DateTimeOffset.FromUnixTimeMilliseconds(r.DeadAt), r.Ordered != 0 ? r.Blocking : 0)).ToList(),
            kept.Count < all.Count);
    }

    /// <summary>
    /// Makes the selected dead letters of a group deliverable again with fresh attempts. Only what is
    /// a dead letter right now moves, so replaying twice delivers nothing twice, and a replay never
    /// touches a message that was not dead-lettered. In an ordered group they go out in key order.
    /// </summary>
    public async Task<int> ReplayAsync(GroupDefinition group, DeadLetterFilter filter, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(database.Command($"""
            UPDATE messaging_deliveries SET state = 'ready', attempts = 0, visible_at = @now, dead_at = NULL, lease_id = NULL,
                reason = NULL, exception_type = NULL, first_failure_at = NULL, last_failure_at = NULL
            WHERE topic = @Topic AND grp = @Name AND state = 'dead' {Selection(filter)} AND {SameGroup}
            """, new { group.Topic, group.Name, group.CreatedAt, group.CreatedBy, now = time.GetUtcNow().ToUnixTimeMilliseconds(), sequences = filter.Sequences?.ToArray() ?? [], filter.Key },
            cancellationToken: cancellationToken));
    }

    /// <summary>Deletes the selected dead letters of a group for good (in an ordered group this lets the rest of their keys go).</summary>
    public async Task<int> PurgeAsync(GroupDefinition group, DeadLetterFilter filter, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(database.Command($"""
            DELETE FROM messaging_deliveries WHERE topic = @Topic AND grp = @Name AND state = 'dead' {Selection(filter)} AND {SameGroup}
            """, new { group.Topic, group.Name, group.CreatedAt, group.CreatedBy, sequences = filter.Sequences?.ToArray() ?? [], filter.Key }, cancellationToken: cancellationToken));
    }

    private string Selection(DeadLetterFilter filter) =>
        (filter.Sequences is null ? "" : " AND " + database.Dialect.InList("seq", "sequences")) + (filter.Key is null ? "" : " AND msg_key = @Key");

    /// <summary>Counts per group and state, and the oldest outstanding message's publish time.</summary>
    public async Task<IReadOnlyList<GroupCounts>> CountsAsync(string? topic, string? group, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Topic, string Grp, string State, long Count, long Oldest)>(database.Command("""
            SELECT topic, grp, state, COUNT(*), MIN(seq) FROM messaging_deliveries
            WHERE (@topic IS NULL OR topic = @topic) AND (@group IS NULL OR grp = @group)
            GROUP BY topic, grp, state
            """, new { topic, group }, cancellationToken: cancellationToken));
        var result = new List<GroupCounts>();
        foreach (var g in rows.GroupBy(r => (r.Topic, r.Grp)))
        {
            var byState = g.ToDictionary(r => r.State, StringComparer.Ordinal);
            var oldest = g.Where(r => r.State != Dead).Select(r => (long?)r.Oldest).Min();
            var publishedAt = oldest is { } seq
                ? await connection.ExecuteScalarAsync<long?>(database.Command("SELECT published_at FROM messaging_messages WHERE seq = @seq", new { seq }, cancellationToken: cancellationToken))
                : null;
            result.Add(new GroupCounts(g.Key.Topic, g.Key.Grp, byState.GetValueOrDefault(Ready).Count, byState.GetValueOrDefault(Leased).Count, byState.GetValueOrDefault(Dead).Count,
                publishedAt is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : null));
        }
        return result;
    }

    /// <summary>Groups that dead-lettered messages since <paramref name="since"/>: how many, and when the first of them was.</summary>
    public async Task<IReadOnlyList<(string Topic, string Group, long Count, DateTimeOffset First)>> DeadLetteredSinceAsync(DateTimeOffset since, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<(string Topic, string Grp, long Count, long First)>(database.Command("""
            SELECT topic, grp, COUNT(*), MIN(dead_at) FROM messaging_deliveries WHERE state = 'dead' AND dead_at >= @since GROUP BY topic, grp
            """, new { since = since.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken)))
            .Select(r => (r.Topic, r.Grp, r.Count, DateTimeOffset.FromUnixTimeMilliseconds(r.First))).ToList();
    }

    /// <summary>
    /// Takes over messages a broker delivered to <paramref name="group"/> (a failure, a lease that ran
    /// out, a message handed back): each is stored once per topic and id, and given the group's
    /// delivery row in the state asked for, from where pulls, retries, dead letters, replay and purge
    /// treat it as any other. Nothing is written when the group was deleted (or replaced) meanwhile.
    /// One transaction for all; a message adopted before (a broker redelivering after a lost ack) keeps its row.
    /// </summary>
    public async Task AdoptAsync(GroupDefinition group, IReadOnlyList<AdoptedMessage> messages, CancellationToken cancellationToken)
    {
        if (messages.Count == 0)
        {
            return;
        }
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            foreach (var m in messages)
            {
                var seq = await connection.ExecuteScalarAsync<long?>(database.Command("""
                    INSERT INTO messaging_messages (topic, id, msg_key, body, headers, bytes, published_at, published_by)
                    VALUES (@Topic, @Id, @Key, @Body, @Headers, @Bytes, @PublishedAt, NULL)
                    ON CONFLICT (topic, id) DO NOTHING RETURNING seq
                    """, new { group.Topic, m.Message.Id, m.Message.Key, m.Message.Body, m.Message.Headers, m.Message.Bytes, m.PublishedAt }, transaction, cancellationToken: cancellationToken))
                    ?? await SequenceOfAsync(connection, transaction, group.Topic, m.Message.Id, cancellationToken);
                await connection.ExecuteAsync(database.Command($"""
                    INSERT INTO messaging_deliveries (topic, grp, seq, msg_key, state, attempts, visible_at, first_failure_at, last_failure_at, reason, exception_type, dead_at)
                    SELECT @Topic, @Name, @seq, @Key, @State, @Attempts, @VisibleAt, @FirstFailureAt, @LastFailureAt, @Reason, @ExceptionType, @DeadAt
                    WHERE {SameGroup}
                    ON CONFLICT (topic, grp, seq) DO NOTHING
                    """, new
                {
                    group.Topic, group.Name, group.CreatedAt, group.CreatedBy, seq, m.Message.Key, m.State, m.Attempts, m.VisibleAt,
                    m.FirstFailureAt, m.LastFailureAt, m.Reason, m.ExceptionType, m.DeadAt,
                }, transaction, cancellationToken: cancellationToken));
            }
            return true;
        }, cancellationToken);
    }

    /// <summary>The ids of <paramref name="ids"/> published to the topic (through a broker since <paramref name="since"/>, or stored here), with their sequences.</summary>
    public async Task<Dictionary<string, long>> KnownIdsAsync(string topic, IReadOnlyList<string> ids, DateTimeOffset since, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var known = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (id, seq) in await connection.QueryAsync<(string, long)>(database.Command($"""
            SELECT id, seq FROM messaging_publish_ids WHERE topic = @topic AND {database.Dialect.InList("id", "ids")} AND published_at >= @since
            UNION ALL
            SELECT id, seq FROM messaging_messages WHERE topic = @topic AND {database.Dialect.InList("id", "ids")}
            """, new { topic, ids = ids.ToArray(), since = since.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken)))
        {
            known.TryAdd(id, seq);
        }
        return known;
    }

    /// <summary>Remembers ids published through a broker, for the dedupe window.</summary>
    public async Task RememberIdsAsync(string topic, IReadOnlyList<(string Id, long Sequence)> ids, CancellationToken cancellationToken)
    {
        if (ids.Count == 0)
        {
            return;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var (id, seq) in ids)
        {
            await connection.ExecuteAsync(database.Command("""
                INSERT INTO messaging_publish_ids (topic, id, seq, published_at) VALUES (@topic, @id, @seq, @now)
                ON CONFLICT (topic, id) DO UPDATE SET seq = excluded.seq, published_at = excluded.published_at
                """, new { topic, id, seq, now }, cancellationToken: cancellationToken));
        }
    }

    /// <summary>Removes up to <paramref name="batch"/> messages every group is done with that were published before <paramref name="before"/>.</summary>
    public async Task<int> ReapAsync(DateTimeOffset before, int batch, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var ids = await connection.ExecuteAsync(database.Command("""
            DELETE FROM messaging_publish_ids WHERE (topic, id) IN (SELECT topic, id FROM messaging_publish_ids WHERE published_at < @before ORDER BY published_at LIMIT @batch)
            """, new { before = before.ToUnixTimeMilliseconds(), batch }, cancellationToken: cancellationToken));
        return ids + await connection.ExecuteAsync(database.Command("""
            DELETE FROM messaging_messages WHERE seq IN (
                SELECT m.seq FROM messaging_messages m
                WHERE m.published_at < @before AND NOT EXISTS (SELECT 1 FROM messaging_deliveries d WHERE d.seq = m.seq)
                ORDER BY m.published_at LIMIT @batch)
            """, new { before = before.ToUnixTimeMilliseconds(), batch }, cancellationToken: cancellationToken));
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static Dictionary<string, string>? ParseHeaders(string? json) => json is null ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(json);

    private sealed class MessageRow
    {
        public long Seq { get; init; }
        public string Id { get; init; } = "";
        public string? MsgKey { get; init; }
        public string Body { get; init; } = "null";
        public string? Headers { get; init; }
        public long PublishedAt { get; init; }
    }

    private sealed class DeadLetterRow
    {
        public string Topic { get; init; } = "";
        public string Grp { get; init; } = "";
        public long Seq { get; init; }
        public string MessageId { get; init; } = "";
        public string? MsgKey { get; init; }
        public string Body { get; init; } = "null";
        public string? Headers { get; init; }
        public string? Reason { get; init; }
        public string? ExceptionType { get; init; }
        public int Attempts { get; init; }
        public long PublishedAt { get; init; }
        public long? FirstFailureAt { get; init; }
        public long? LastFailureAt { get; init; }
        public long DeadAt { get; init; }
        public long Blocking { get; init; }
        public long Ordered { get; init; }
        public long Bytes { get; init; }
    }
}

/// <summary>A message to publish, validated: <see cref="Body"/> and <see cref="Headers"/> as JSON text.</summary>
/// <param name="IdGiven">Whether the publisher chose the id (only those can repeat; a new one needs no dedupe lookup).</param>
internal sealed record OutgoingMessage(string Id, string? Key, string Body, string? Headers, bool IdGiven = true)
{
    public int Bytes => Encoding.UTF8.GetByteCount(Body) + (Headers is null ? 0 : Encoding.UTF8.GetByteCount(Headers));
}

/// <summary>A consumer group as stored (ordered and dead_letter are 0 or 1 on both engines).</summary>
internal sealed record GroupDefinition
{
    public required string Topic { get; init; }
    public required string Name { get; init; }
    public int MaxAttempts { get; init; }
    public long BackoffInitialMs { get; init; }
    public long BackoffMaxMs { get; init; }
    public long Ordered { get; init; }
    public long DeadLetter { get; init; }
    public long CreatedAt { get; init; }
    public string? CreatedBy { get; init; }

    /// <summary>Where a push group's messages are POSTed; null for a pull group.</summary>
    public string? PushUrl { get; init; }

    /// <summary>A push group's signing secret, envelope-encrypted (<see cref="PushSecrets"/>).</summary>
    public byte[]? PushSecret { get; init; }

    public bool IsPush => PushUrl is not null;

    public bool IsOrdered => Ordered != 0;

    public bool IsDeadLettering => DeadLetter != 0;

    /// <summary>The delay before the retry that follows attempt <paramref name="attempts"/>: the initial delay doubled per attempt, up to the maximum.</summary>
    public TimeSpan BackoffFor(int attempts) =>
        TimeSpan.FromMilliseconds(Math.Min(BackoffMaxMs, BackoffInitialMs * (double)(1L << Math.Clamp(attempts - 1, 0, 30))));

    /// <summary>Whether <paramref name="other"/> asks for the same settings (a create of an existing group succeeds only then).</summary>
    public bool SameSettings(GroupDefinition other) =>
        MaxAttempts == other.MaxAttempts && BackoffInitialMs == other.BackoffInitialMs && BackoffMaxMs == other.BackoffMaxMs && Ordered == other.Ordered && DeadLetter == other.DeadLetter
        && string.Equals(PushUrl, other.PushUrl, StringComparison.Ordinal);
}

/// <summary>What a pull leased, and how many leases that ran out on their last attempt it settled (dead-lettered, or dropped when <paramref name="DeadLettering"/> is false).</summary>
internal sealed record PullOutcome(IReadOnlyList<LeasedMessage> Messages, int Expired, bool DeadLettering);

internal sealed record NackOutcome(IReadOnlyList<string> Stale, int DeadLettered, int Dropped);

internal sealed record DeadLetterCursor(string Topic, string Group, long Sequence);

/// <summary>The sequences, or one key's dead letters, or (both null) every dead letter of a group.</summary>
internal sealed record DeadLetterFilter(IReadOnlyList<long>? Sequences, string? Key);

/// <summary>A message a broker delivered, taken over by the database in <paramref name="State"/> (see <see cref="MessageStore.AdoptAsync"/>).</summary>
internal sealed record AdoptedMessage(OutgoingMessage Message, long PublishedAt, string State, int Attempts, long VisibleAt,
    string? Reason = null, string? ExceptionType = null, long? FirstFailureAt = null, long? LastFailureAt = null, long? DeadAt = null);

internal sealed record GroupCounts(string Topic, string Group, long Ready, long Leased, long Dead, DateTimeOffset? OldestPublishedAt);
