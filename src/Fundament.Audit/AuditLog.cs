using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Fundament.Hosting;
using Fundament.Keys;
using Fundament.Storage;

namespace Fundament.Audit;

/// <summary>
/// Appends, queries and verifies the audit log. Appends are serialized on the chain head row
/// (a row lock on PostgreSQL, the single writer on SQLite), so replicas extend one chain.
/// </summary>
internal sealed class AuditLog : IAuditLog, IStartupTask, IEnvelopeHolder
{
    private static readonly byte[] ChainKeyContext = Encoding.ASCII.GetBytes("fundament:audit:chain-key");

    private readonly IDatabase _database;
    private readonly EnvelopeEncryption _encryption;
    private readonly TimeProvider _time;
    private readonly Counter<long> _appended;
    private byte[]? _chainKey;

    public AuditLog(IDatabase database, EnvelopeEncryption encryption, TimeProvider time, IMeterFactory meters)
    {
        _database = database;
        _encryption = encryption;
        _time = time;
        _appended = meters.Create("Fundament.Audit").CreateCounter<long>("fundament.audit.entries", "{entry}", "Audit entries appended.");
    }

    public int Order => 0;

    public string Name => "audit chain key";

    public Task<RewrapResult> RewrapAsync(EnvelopeEncryption current, CancellationToken cancellationToken) =>
        EnvelopeColumn.RewrapAsync(_database, current, "audit_chain", ["id"], "chain_key", null, cancellationToken);

    /// <summary>Creates the chain head and its key on first start.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        var exists = await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM audit_chain WHERE id = 1", cancellationToken: cancellationToken));
        if (exists == 0)
        {
            var key = RandomNumberGenerator.GetBytes(32);
            var sealedKey = _encryption.Encrypt(key, ChainKeyContext);
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO audit_chain (id, head_seq, head_hash, chain_key) VALUES (1, 0, @genesis, @key) ON CONFLICT (id) DO NOTHING",
                new { genesis = AuditChain.Genesis, key = sealedKey }, cancellationToken: cancellationToken));
        }
        await ChainKeyAsync(cancellationToken);
    }

    public async Task AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        var key = await ChainKeyAsync(cancellationToken);
        var details = auditEvent.Details is { Count: > 0 }
            ? JsonSerializer.Serialize(new SortedDictionary<string, string>(auditEvent.Details.ToDictionary(), StringComparer.Ordinal))
            : null;
        var at = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // An audit write must not be lost because the caller's request was aborted mid-way.
        await _database.InTransactionAsync(async (connection, transaction) =>
        {
            var head = await connection.QuerySingleAsync<(long Seq, string Hash)>(new CommandDefinition(
                _database.Dialect.Expand("SELECT head_seq, head_hash FROM audit_chain WHERE id = 1{for_update}"),
                transaction: transaction, cancellationToken: CancellationToken.None));
            var entry = new AuditEntry
            {
                Seq = head.Seq + 1,
                Id = Guid.CreateVersion7().ToString("N"),
                At = at,
                Actor = auditEvent.Actor,
                ActorName = auditEvent.ActorName,
                Action = auditEvent.Action,
                Target = auditEvent.Target,
                Outcome = auditEvent.Outcome,
                SourceIp = auditEvent.SourceIp,
                Details = details,
                PrevHash = head.Hash,
            };
            var hash = AuditChain.Hash(key, entry);
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO audit_entries (seq, id, at, actor, actor_name, action, target, outcome, source_ip, details, prev_hash, hash)
                VALUES (@Seq, @Id, @At, @Actor, @ActorName, @Action, @Target, @Outcome, @SourceIp, @Details, @PrevHash, @hash)
                """, new { entry.Seq, entry.Id, entry.At, entry.Actor, entry.ActorName, entry.Action, entry.Target, entry.Outcome, entry.SourceIp, entry.Details, entry.PrevHash, hash },
                transaction, cancellationToken: CancellationToken.None));
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE audit_chain SET head_seq = @seq, head_hash = @hash WHERE id = 1",
                new { seq = entry.Seq, hash }, transaction, cancellationToken: CancellationToken.None));
            return entry.Seq;
        }, CancellationToken.None);
        _appended.Add(1, new KeyValuePair<string, object?>("outcome", auditEvent.Outcome));
    }

    public async Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken)
    {
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
    /// Walks the whole chain in order: sequence numbers without gaps, each entry linked to the one
    /// before and its HMAC matching, and the head record pointing at the last entry (so a removed
    /// tail is noticed too).
    /// </summary>
    public async Task<AuditVerification> VerifyAsync(CancellationToken cancellationToken)
    {
        var key = await ChainKeyAsync(cancellationToken);
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var head = await connection.QuerySingleAsync<(long Seq, string Hash)>(new CommandDefinition(
            "SELECT head_seq, head_hash FROM audit_chain WHERE id = 1", transaction: transaction, cancellationToken: cancellationToken));
        var expectedSeq = 1L;
        var previous = AuditChain.Genesis;
        var entries = 0L;
        var rows = connection.QueryUnbufferedAsync<AuditEntry>(
            "SELECT seq, id, at, actor, actor_name AS ActorName, action, target, outcome, source_ip AS SourceIp, details, prev_hash AS PrevHash, hash FROM audit_entries WHERE seq <= @head ORDER BY seq",
            new { head = head.Seq }, transaction);
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
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(AuditChain.Hash(key, entry)), Encoding.ASCII.GetBytes(entry.Hash)))
            {
                return AuditVerification.Invalid(entries, entry.Seq, $"entry {entry.Seq} was altered");
            }
            previous = entry.Hash;
            expectedSeq++;
            entries++;
        }
        if (entries != head.Seq || !string.Equals(previous, head.Hash, StringComparison.Ordinal))
        {
            return AuditVerification.Invalid(entries, entries + 1, $"the chain ends at entry {entries} but its head records entry {head.Seq}");
        }
        return new AuditVerification(true, entries, null, null);
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
        return _chainKey = _encryption.Decrypt(sealedKey, ChainKeyContext);
    }
}

internal sealed record AuditQuery(string? Actor, string? Action, string? Target, string? Outcome, DateTimeOffset? From, DateTimeOffset? To, long? Before, int Limit);

/// <summary>One page of entries, newest first; pass <see cref="Next"/> as <c>before</c> for the next page.</summary>
public sealed record AuditPage(IReadOnlyList<AuditEntry> Items, long? Next);

/// <summary>Result of <c>GET /api/v1/audit/verify</c>.</summary>
public sealed record AuditVerification(bool Valid, long Entries, long? FirstInvalidSeq, string? Reason)
{
    public static AuditVerification Invalid(long entries, long seq, string reason) => new(false, entries, seq, reason);
}
