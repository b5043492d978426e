using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Fundament.Core.Keys;
using Fundament.Core.Watch;

namespace Fundament.Audit;

/// <summary>
/// Appends, queries and verifies the audit log (ADR 0002, ADR 0013, ADR 0014). Inside a unit of
/// work an append writes a <em>pending</em> entry, MAC'd with the chain key, in the caller's
/// transaction: it commits with the change it records, or not at all. A linker then chains pending
/// entries in batches (<see cref="LinkAsync"/>): under the head row's lock it gives each its
/// sequence number and HMAC link and moves the head, whose own MAC makes a rewound head detectable.
/// An append on its own (a read, a denial, a login) is group-committed instead: this node's one
/// writer chains everything queued in one transaction and releases the callers once it is durable.
/// Queries and verification link first, so they see every committed entry.
/// </summary>
internal sealed partial class AuditLog : IAuditLog, IStartupTask, IEnvelopeHolder
{
    private const int LinkBatch = 500;

    /// <summary>The most standalone entries one group commit writes.</summary>
    private const int WriteBatch = 1000;

    /// <summary>Rows per INSERT statement when chaining.</summary>
    private const int InsertRows = 100;
    // The chain key's envelope is bound to one of these. A key sealed under the second belongs to a
    // chain whose head has carried a MAC ever since; only a key still sealed under the first (a chain
    // from before head MACs) lets a head without one be signed as it stands, once. Without the master
    // key nobody can turn the second back into the first.
    private static readonly byte[] LegacyChainKeyContext = Encoding.ASCII.GetBytes("fundament:audit:chain-key");
    private static readonly byte[] ChainKeyContext = Encoding.ASCII.GetBytes("fundament:audit:chain-key:signed-head");

    private readonly IDatabase _database;
    private readonly EnvelopeEncryption _encryption;
    private readonly TimeProvider _time;
    private readonly ILogger<AuditLog> _logger;
    private readonly Counter<long> _appended;
    private readonly Histogram<int> _batchEntries;
    private readonly Histogram<double> _batchDuration;
    private readonly SemaphoreSlim _linking = new(1, 1);
    private readonly GroupCommitQueue<QueuedWrite> _queue;
    private byte[]? _chainKey;
    private long _highWater;

    public AuditLog(IDatabase database, EnvelopeEncryption encryption, TimeProvider time, IMeterFactory meters, ILogger<AuditLog> logger)
    {
        _database = database;
        _encryption = encryption;
        _time = time;
        _logger = logger;
        _queue = new GroupCommitQueue<QueuedWrite>(WriteBatch, CommitAsync);
        var meter = meters.Create("Fundament.Audit");
        _appended = meter.CreateCounter<long>("fundament.audit.entries", "{entry}", "Audit entries appended.");
        _batchEntries = meter.CreateHistogram<int>("fundament.audit.group_commit.entries", "{entry}", "Entries per group commit of standalone audit entries.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] });
        _batchDuration = meter.CreateHistogram<double>("fundament.audit.group_commit.duration", "s", "How long one group commit took, from its first statement to durable.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
    }

    /// <summary>Wakes the linker: entries are waiting.</summary>
    public ChangeSignal Pending { get; } = new();

    public int Order => 0;

    public string Name => "audit chain key";

    public Task<RewrapResult> RewrapAsync(EnvelopeEncryption current, CancellationToken cancellationToken) =>
        EnvelopeColumn.RewrapAsync(_database, current, "audit_chain", ["id"], "chain_key", null, cancellationToken);

    public Task<IReadOnlyList<string>> SampleKeyIdsAsync(CancellationToken cancellationToken) =>
        EnvelopeColumn.KeyIdsAsync(_database, "audit_chain", "chain_key", 10, cancellationToken);

    /// <summary>Creates the chain head and its key on first start; authenticates a head from before heads were MAC'd.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            var exists = await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM audit_chain WHERE id = 1", cancellationToken: cancellationToken));
            if (exists == 0)
            {
                var key = RandomNumberGenerator.GetBytes(32);
                var sealedKey = _encryption.Encrypt(key, ChainKeyContext);
                await connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO audit_chain (id, head_seq, head_hash, chain_key, head_mac) VALUES (1, 0, @genesis, @key, @mac) ON CONFLICT (id) DO NOTHING",
                    new { genesis = AuditChain.Genesis, key = sealedKey, mac = AuditChain.HeadMac(key, 0, AuditChain.Genesis) }, cancellationToken: cancellationToken));
            }
        }
        await _database.InTransactionAsync(async (connection, transaction) =>
        {
            var row = await connection.QuerySingleAsync<(long Seq, string Hash, string? Mac, byte[] Key)>(_database.Command("SELECT head_seq, head_hash, head_mac, chain_key FROM audit_chain WHERE id = 1{for_update}", transaction: transaction, cancellationToken: cancellationToken));
            if (TryOpen(row.Key, ChainKeyContext) is not null)
            {
                // A signed chain: a head without a MAC is a rewrite, which verification reports; it is not signed here.
                return 0;
            }
            // A chain from before heads carried a MAC: the head is trusted as it stands at this
            // upgrade, signed, and the key resealed so that this can never happen again.
            var key = _encryption.Decrypt(row.Key, LegacyChainKeyContext);
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE audit_chain SET head_mac = @mac, chain_key = @sealedKey WHERE id = 1",
                new { mac = row.Mac ?? AuditChain.HeadMac(key, row.Seq, row.Hash), sealedKey = _encryption.Encrypt(key, ChainKeyContext) }, transaction, cancellationToken: cancellationToken));
            return 1;
        }, cancellationToken);
        _chainKey = null;
    }

    private byte[]? TryOpen(byte[] sealedKey, byte[] context)
    {
        try
        {
            return _encryption.Decrypt(sealedKey, context);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    /// <summary>Several entries of one unit of work in one write (each on its own otherwise).</summary>
    public async Task AppendAsync(IReadOnlyList<AuditEvent> auditEvents, CancellationToken cancellationToken)
    {
        if (UnitOfWork.Current is null || auditEvents.Count <= 1)
        {
            foreach (var auditEvent in auditEvents)
            {
                await AppendAsync(auditEvent, cancellationToken);
            }
            return;
        }
        var key = await ChainKeyAsync(cancellationToken);
        var at = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var rows = auditEvents.Select(e => PendingRowOf(key, e, at)).ToList();
        // On the unit's transaction as it is (no savepoint): if the entries cannot be written, the change they record must not commit either.
        await InsertPendingAsync(UnitOfWork.Current.Connection, UnitOfWork.Current.Transaction, rows);
        foreach (var group in auditEvents.GroupBy(e => e.Outcome))
        {
            _appended.Add(group.Count(), new KeyValuePair<string, object?>("outcome", group.Key));
        }
        UnitOfWork.AfterCommit(Pending.Notify);
    }

    private static PendingRow PendingRowOf(byte[] key, AuditEvent auditEvent, long at)
    {
        var entry = new AuditEntry
        {
            Id = Guid.CreateVersion7().ToString("N"),
            At = at,
            Actor = auditEvent.Actor,
            ActorName = auditEvent.ActorName,
            Action = auditEvent.Action,
            Target = auditEvent.Target,
            Outcome = auditEvent.Outcome,
            SourceIp = auditEvent.SourceIp,
            Details = auditEvent.Details is { Count: > 0 }
                ? JsonSerializer.Serialize(new SortedDictionary<string, string>(auditEvent.Details.ToDictionary(), StringComparer.Ordinal))
                : null,
        };
        return new PendingRow
        {
            Id = entry.Id, At = entry.At, Actor = entry.Actor, ActorName = entry.ActorName, Action = entry.Action, Target = entry.Target,
            Outcome = entry.Outcome, SourceIp = entry.SourceIp, Details = entry.Details, Mac = AuditChain.PendingMac(key, entry),
        };
    }

    public async Task AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        var key = await ChainKeyAsync(cancellationToken);
        var row = PendingRowOf(key, auditEvent, _time.GetUtcNow().ToUnixTimeMilliseconds());
        if (UnitOfWork.Current is not null)
        {
            // Joins the caller's unit of work: it commits with the change it records, or not at all.
            await _database.InTransactionAsync((connection, transaction) => InsertPendingAsync(connection, transaction, [row]), CancellationToken.None);
            _appended.Add(1, new KeyValuePair<string, object?>("outcome", auditEvent.Outcome));
            UnitOfWork.AfterCommit(Pending.Notify);
            return;
        }
        // On its own (a read, a denial, a login): group commit. The entry joins the batch the
        // writer commits next, and this returns once that batch is durable (audit before response),
        // even if the request was aborted meanwhile.
        var write = new QueuedWrite(row);
        _queue.Enqueue(write);
        await write.Done.Task;
    }

    /// <summary>Rows per INSERT of pending entries: a unit of work with many entries (a group-committed batch of appends) writes them in a few statements.</summary>
    private const int PendingChunk = 100;

    private static async Task<int> InsertPendingAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, IReadOnlyList<PendingRow> rows)
    {
        var written = 0;
        for (var offset = 0; offset < rows.Count; offset += PendingChunk)
        {
            var chunk = rows.Skip(offset).Take(PendingChunk).ToList();
            var parameters = new DynamicParameters();
            var values = new List<string>(chunk.Count);
            for (var i = 0; i < chunk.Count; i++)
            {
                var r = chunk[i];
                values.Add(string.Create(CultureInfo.InvariantCulture, $"(@id{i}, @at{i}, @ac{i}, @an{i}, @act{i}, @t{i}, @o{i}, @ip{i}, @d{i}, @m{i})"));
                parameters.Add($"id{i}", r.Id);
                parameters.Add($"at{i}", r.At);
                parameters.Add($"ac{i}", r.Actor);
                parameters.Add($"an{i}", r.ActorName);
                parameters.Add($"act{i}", r.Action);
                parameters.Add($"t{i}", r.Target);
                parameters.Add($"o{i}", r.Outcome);
                parameters.Add($"ip{i}", r.SourceIp);
                parameters.Add($"d{i}", r.Details);
                parameters.Add($"m{i}", r.Mac);
            }
            written += await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO audit_pending (id, at, actor, actor_name, action, target, outcome, source_ip, details, mac) VALUES " + string.Join(", ", values),
                parameters, transaction, flags: chunk.Count == 1 ? CommandFlags.Buffered : CommandFlags.NoCache, cancellationToken: CancellationToken.None));
        }
        return written;
    }

    /// <summary>
    /// One batch of this node's standalone entries (group commit, <see cref="GroupCommitQueue{T}"/>):
    /// up to <see cref="WriteBatch"/> of them, chained in one transaction under the head's lock, then
    /// their callers released. One commit (one fsync) serves
    /// every request that arrived while the previous one was being written, and the entries are
    /// written once, straight into the chain. A failed batch fails its callers, and only them.
    /// </summary>
    private async Task CommitAsync(IReadOnlyList<QueuedWrite> batch)
    {
        try
        {
            var rows = batch.Select(b => b.Row).ToList();
            var key = await ChainKeyAsync(CancellationToken.None);
            var started = Stopwatch.GetTimestamp();
            // Chained straight away, under the head's lock, in one transaction with whatever
            // else is pending; written as pending instead when the head does not verify, so an
            // entry is never lost to a broken chain.
            var (_, seq, chained) = await _database.InTransactionAsync(async (connection, transaction) =>
            {
                var result = await ChainAsync(connection, transaction, key, rows);
                if (!result.Chained)
                {
                    await InsertPendingAsync(connection, transaction, rows);
                }
                return result;
            }, CancellationToken.None);
            _batchEntries.Record(batch.Count);
            _batchDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
            if (chained)
            {
                InterlockedMax(ref _highWater, seq);
            }
            foreach (var write in batch)
            {
                _appended.Add(1, new KeyValuePair<string, object?>("outcome", write.Row.Outcome));
                write.Done.TrySetResult();
            }
            if (!chained)
            {
                Pending.Notify();
            }
        }
        catch (Exception ex)
        {
            foreach (var write in batch)
            {
                write.Done.TrySetException(ex);
            }
        }
    }

    private sealed class QueuedWrite(PendingRow row)
    {
        public PendingRow Row { get; } = row;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// Chains every pending entry, in batches, and returns how many. Refuses to extend a head that
    /// does not verify (rewritten, or with entries missing behind it): the entries stay pending and
    /// verification reports where the chain broke.
    /// </summary>
    public async Task<int> LinkAsync(CancellationToken cancellationToken)
    {
        if (UnitOfWork.Current is not null)
        {
            return 0;
        }
        var key = await ChainKeyAsync(cancellationToken);
        await _linking.WaitAsync(cancellationToken);
        try
        {
            var total = 0;
            while (true)
            {
                var (linked, linkedTo, _) = await _database.InTransactionAsync(
                    (connection, transaction) => ChainAsync(connection, transaction, key, []), CancellationToken.None);
                // Only once committed: a failed commit must not leave this node refusing a head it never moved.
                InterlockedMax(ref _highWater, linkedTo);
                total += linked;
                if (linked < LinkBatch)
                {
                    return total;
                }
            }
        }
        finally
        {
            _linking.Release();
        }
    }

    /// <summary>
    /// Under the chain head's lock: checks the head, chains up to <see cref="LinkBatch"/> pending
    /// entries and then <paramref name="fresh"/> (a group commit's entries, which so skip the
    /// pending table), and moves the head. Returns how many entries were chained, the new head's
    /// sequence, and false when the head does not verify (nothing was chained).
    /// </summary>
    private async Task<(int Linked, long Seq, bool Chained)> ChainAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, byte[] key, IReadOnlyList<PendingRow> fresh)
    {
        // The head, locked; then, in a second statement (so with a snapshot taken after the lock was
        // granted: on PostgreSQL a statement that waited for the lock still sees the rest as it was
        // when it began), the entry it names and whether anything is pending. One round trip.
        (long Seq, string Hash, string? Mac, long? LastSeq, string? LastHash, long AnyPending) head;
        using (var reader = await connection.QueryMultipleAsync(_database.Command("""
                SELECT head_seq, head_hash, head_mac FROM audit_chain WHERE id = 1{for_update};
                SELECT (SELECT e.seq FROM audit_entries e ORDER BY e.seq DESC LIMIT 1),
                       (SELECT e.hash FROM audit_entries e ORDER BY e.seq DESC LIMIT 1),
                       CAST(CASE WHEN EXISTS (SELECT 1 FROM audit_pending) THEN 1 ELSE 0 END AS BIGINT);
                """,
            transaction: transaction, cancellationToken: CancellationToken.None)))
        {
            var row = await reader.ReadSingleAsync<(long Seq, string Hash, string? Mac)>();
            var last = await reader.ReadSingleAsync<(long? LastSeq, string? LastHash, long AnyPending)>();
            head = (row.Seq, row.Hash, row.Mac, last.LastSeq, last.LastHash, last.AnyPending);
        }
        if (HeadProblem(key, head.Seq, head.Hash, head.Mac) is { } problem)
        {
            LogChainBroken(_logger, problem);
            return (0, 0L, false);
        }
        if (Interlocked.Read(ref _highWater) is var seen && head.Seq < seen)
        {
            // A valid but earlier head, restored over a deleted tail: extending it would bury the gap.
            LogChainBroken(_logger, $"the chain head records entry {head.Seq}, but this node chained up to entry {seen}");
            return (0, 0L, false);
        }
        if ((head.LastSeq ?? 0) != head.Seq || (head.LastSeq is not null && head.LastHash != head.Hash))
        {
            LogChainBroken(_logger, $"the chain's last entry is {head.LastSeq ?? 0} but its head records {head.Seq}");
            return (0, 0L, false);
        }
        var pending = head.AnyPending == 0 ? [] : (await connection.QueryAsync<PendingRow>(new CommandDefinition(
            "SELECT id, at, actor, actor_name AS ActorName, action, target, outcome, source_ip AS SourceIp, details, mac FROM audit_pending ORDER BY at, id LIMIT @batch",
            new { batch = LinkBatch }, transaction, cancellationToken: CancellationToken.None))).ToList();
        if (pending.Count == 0 && fresh.Count == 0)
        {
            return (0, head.Seq, true);
        }
        var seq = head.Seq;
        var hash = head.Hash;
        var entries = new List<(AuditEntry Entry, string Hash)>(pending.Count + fresh.Count);
        foreach (var row in pending.Concat(fresh))
        {
            var entry = row.ToEntry();
            if (!FixedEquals(AuditChain.PendingMac(key, entry), row.Mac))
            {
                // Changed while it waited: chain a record of that, never the altered content.
                entry = new AuditEntry
                {
                    Id = entry.Id,
                    At = entry.At,
                    Actor = "system",
                    Action = "audit.tampered",
                    Target = $"audit_pending:{entry.Id}",
                    Outcome = AuditOutcome.Failure,
                };
            }
            entry = entry.Linked(++seq, hash);
            hash = AuditChain.Hash(key, entry);
            entries.Add((entry, hash));
        }
        // Multi-row statements of a bounded size: few statements per batch, while the parameters a
        // statement binds (looked up by name, linearly) and the shapes Dapper would cache stay small.
        foreach (var chunk in entries.Chunk(InsertRows))
        {
            var sql = new StringBuilder("INSERT INTO audit_entries (seq, id, at, actor, actor_name, action, target, outcome, source_ip, details, prev_hash, hash) VALUES ");
            var parameters = new DynamicParameters();
            for (var n = 0; n < chunk.Length; n++)
            {
                var (entry, entryHash) = chunk[n];
                sql.Append(n == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@s{n}, @i{n}, @a{n}, @r{n}, @rn{n}, @x{n}, @t{n}, @o{n}, @ip{n}, @d{n}, @p{n}, @h{n})");
                parameters.Add($"s{n}", entry.Seq);
                parameters.Add($"i{n}", entry.Id);
                parameters.Add($"a{n}", entry.At);
                parameters.Add($"r{n}", entry.Actor);
                parameters.Add($"rn{n}", entry.ActorName);
                parameters.Add($"x{n}", entry.Action);
                parameters.Add($"t{n}", entry.Target);
                parameters.Add($"o{n}", entry.Outcome);
                parameters.Add($"ip{n}", entry.SourceIp);
                parameters.Add($"d{n}", entry.Details);
                parameters.Add($"p{n}", entry.PrevHash);
                parameters.Add($"h{n}", entryHash);
            }
            await connection.ExecuteAsync(new CommandDefinition(sql.ToString(), parameters, transaction, flags: CommandFlags.NoCache, cancellationToken: CancellationToken.None));
        }
        if (pending.Count > 0)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                $"DELETE FROM audit_pending WHERE {_database.Dialect.InList("id", "ids")}", new { ids = pending.Select(r => r.Id).ToArray() }, transaction,
                flags: CommandFlags.NoCache, cancellationToken: CancellationToken.None));
        }
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE audit_chain SET head_seq = @seq, head_hash = @hash, head_mac = @mac WHERE id = 1",
            new { seq, hash, mac = AuditChain.HeadMac(key, seq, hash) }, transaction, cancellationToken: CancellationToken.None));
        return (pending.Count, seq, true);
    }

    private static string? HeadProblem(byte[] key, long seq, string hash, string? mac) =>
        mac is null || !FixedEquals(AuditChain.HeadMac(key, seq, hash), mac)
            ? $"the chain head (entry {seq}) does not carry a valid MAC: it was rewritten outside Fundament"
            : null;

    private static bool FixedEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));

    private static void InterlockedMax(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value > current && Interlocked.CompareExchange(ref target, value, current) != current)
        {
            current = Interlocked.Read(ref target);
        }
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "The audit chain does not verify, so new entries stay pending until it is looked at: {Problem}")]
    private static partial void LogChainBroken(ILogger logger, string problem);

    private sealed class PendingRow
    {
        public string Id { get; init; } = "";
        public long At { get; init; }
        public string Actor { get; init; } = "";
        public string? ActorName { get; init; }
        public string Action { get; init; } = "";
        public string? Target { get; init; }
        public string Outcome { get; init; } = "";
        public string? SourceIp { get; init; }
        public string? Details { get; init; }
        public string Mac { get; init; } = "";

        public AuditEntry ToEntry() => new()
        {
            Id = Id, At = At, Actor = Actor, ActorName = ActorName, Action = Action, Target = Target, Outcome = Outcome, SourceIp = SourceIp, Details = Details,
        };
    }

    public async Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken)
    {
        await LinkAsync(cancellationToken);
        var sql = new StringBuilder("SELECT seq, id, at, actor, actor_name AS ActorName, action, target, outcome, source_ip AS SourceIp, details, prev_hash AS PrevHash, hash FROM audit_entries WHERE 1 = 1");
        var args = new DynamicParameters();
        if (query.Before is { } before)
        {
            sql.Append(" AND seq < @before");
            args.Add("before", before);
        }
        if (query.Actor is { Length: > 0 } actor)
        {
            sql.Append(" AND actor = @actor");
            args.Add("actor", actor);
        }
        if (query.Action is { Length: > 0 } action)
        {
            // "auth." matches every auth.* action.
            if (action.EndsWith('.'))
            {
                // Escaped, so an action with '_' (registry.route_claim.) matches itself and not a wildcard.
                sql.Append(" AND action LIKE @action ESCAPE '\\'");
                args.Add("action", action.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%");
            }
            else
            {
                sql.Append(" AND action = @action");
                args.Add("action", action);
            }
        }
        if (query.Target is { Length: > 0 } target)
        {
            sql.Append(" AND target = @target");
            args.Add("target", target);
        }
        if (query.Outcome is { Length: > 0 } outcome)
        {
            sql.Append(" AND outcome = @outcome");
            args.Add("outcome", outcome);
        }
        if (query.From is { } from)
        {
            sql.Append(" AND at >= @from");
            args.Add("from", from.ToUnixTimeMilliseconds());
        }
        if (query.To is { } to)
        {
            sql.Append(" AND at < @to");
            args.Add("to", to.ToUnixTimeMilliseconds());
        }
        sql.Append(" ORDER BY seq DESC LIMIT @limit");
        args.Add("limit", query.Limit + 1);

        await using var connection = await _database.OpenAsync(cancellationToken);
        var rows = (await connection.QueryAsync<AuditEntry>(new CommandDefinition(sql.ToString(), args, cancellationToken: cancellationToken))).ToList();
        long? next = null;
        if (rows.Count > query.Limit)
        {
            rows.RemoveAt(rows.Count - 1);
            next = rows[^1].Seq;
        }
        return new AuditPage(rows, next);
    }

    /// <summary>
    /// Links what is pending, then walks the whole chain in order: sequence numbers without gaps,
    /// each entry linked to the one before and its HMAC matching, the head's own MAC valid and
    /// pointing at the last entry (so a removed tail is noticed, even with the head rewound over
    /// it), and no entry missing that this process saw chained. Pending entries that no longer match
    /// their MAC are reported too.
    /// </summary>
    public async Task<AuditVerification> VerifyAsync(CancellationToken cancellationToken)
    {
        await LinkAsync(cancellationToken);
        var key = await ChainKeyAsync(cancellationToken);
        // Read before the snapshot: whatever this node chained up to now is committed, so the snapshot holds it.
        var seen = Interlocked.Read(ref _highWater);
        await using var connection = await _database.OpenAsync(cancellationToken);
        // One snapshot for the head and the entries, so a linker committing meanwhile cannot make them disagree.
        // On SQLite a deferred transaction: a read snapshot in WAL mode, not the database's write lock
        // (which would stall every writer for as long as the walk takes).
        await using var transaction = connection is Microsoft.Data.Sqlite.SqliteConnection sqlite
            ? sqlite.BeginTransaction(System.Data.IsolationLevel.Serializable, deferred: true)
            : await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
        var head = await connection.QuerySingleAsync<(long Seq, string Hash, string? Mac)>(new CommandDefinition(
            "SELECT head_seq, head_hash, head_mac FROM audit_chain WHERE id = 1", transaction: transaction, cancellationToken: cancellationToken));
        var expectedSeq = 1L;
        var previous = AuditChain.Genesis;
        var entries = 0L;
        var rows = connection.QueryUnbufferedAsync<AuditEntry>(
            "SELECT seq, id, at, actor, actor_name AS ActorName, action, target, outcome, source_ip AS SourceIp, details, prev_hash AS PrevHash, hash FROM audit_entries ORDER BY seq",
            transaction: transaction);
        await foreach (var entry in rows.WithCancellation(cancellationToken))
        {
            if (entry.Seq != expectedSeq)
            {
                return AuditVerification.Invalid(entries, expectedSeq, $"entry {expectedSeq} is missing");
            }
            if (!string.Equals(entry.PrevHash, previous, StringComparison.Ordinal))
            {
                return AuditVerification.Invalid(entries, entry.Seq, $"entry {entry.Seq} does not link to the entry before it");
            }
            if (!FixedEquals(AuditChain.Hash(key, entry), entry.Hash))
            {
                return AuditVerification.Invalid(entries, entry.Seq, $"entry {entry.Seq} was altered");
            }
            previous = entry.Hash;
            expectedSeq++;
            entries++;
        }
        if (HeadProblem(key, head.Seq, head.Hash, head.Mac) is { } headProblem)
        {
            return AuditVerification.Invalid(entries, entries + 1, headProblem);
        }
        if (entries != head.Seq || !string.Equals(previous, head.Hash, StringComparison.Ordinal))
        {
            return AuditVerification.Invalid(entries, Math.Min(entries, head.Seq) + 1,
                entries < head.Seq ? $"entries {entries + 1} to {head.Seq} are missing: the chain ends at entry {entries} but its head records entry {head.Seq}"
                    : $"the chain ends at entry {entries} but its head records entry {head.Seq}");
        }
        if (seen > entries)
        {
            return AuditVerification.Invalid(entries, entries + 1, $"entries {entries + 1} to {seen} are missing: this node chained them, and the head was rewound to a state recorded earlier");
        }
        var pending = (await connection.QueryAsync<PendingRow>(new CommandDefinition(
            "SELECT id, at, actor, actor_name AS ActorName, action, target, outcome, source_ip AS SourceIp, details, mac FROM audit_pending",
            transaction: transaction, cancellationToken: cancellationToken))).ToList();
        if (pending.FirstOrDefault(p => !FixedEquals(AuditChain.PendingMac(key, p.ToEntry()), p.Mac)) is { } altered)
        {
            return AuditVerification.Invalid(entries, entries + 1, $"pending entry {altered.Id} was altered before it was chained");
        }
        return new AuditVerification(true, entries, null, null) { Pending = pending.Count };
    }

    private async ValueTask<byte[]> ChainKeyAsync(CancellationToken cancellationToken)
    {
        if (_chainKey is { } cached)
        {
            return cached;
        }
        await using var connection = await _database.OpenAsync(cancellationToken);
        var sealedKey = await connection.ExecuteScalarAsync<byte[]>(new CommandDefinition("SELECT chain_key FROM audit_chain WHERE id = 1", cancellationToken: cancellationToken))
            ?? throw new InvalidOperationException("The audit chain has not been initialized.");
        // A legacy key (before head MACs) opens only until RunAsync reseals it at startup.
        return _chainKey = TryOpen(sealedKey, ChainKeyContext) ?? _encryption.Decrypt(sealedKey, LegacyChainKeyContext);
    }
}

internal sealed record AuditQuery(string? Actor, string? Action, string? Target, string? Outcome, DateTimeOffset? From, DateTimeOffset? To, long? Before, int Limit);

/// <summary>One page of entries, newest first; pass <see cref="Next"/> as <c>before</c> for the next page.</summary>
public sealed record AuditPage(IReadOnlyList<AuditEntry> Items, long? Next);

/// <summary>Result of <c>GET /api/v1/audit/verify</c>.</summary>
public sealed record AuditVerification(bool Valid, long Entries, long? FirstInvalidSeq, string? Reason)
{
    /// <summary>Entries written but not chained yet (the chain is stuck when this grows: see <see cref="Reason"/>).</summary>
    public long Pending { get; init; }

    public static AuditVerification Invalid(long entries, long seq, string reason) => new(false, entries, seq, reason);
}
