using System.Data.Common;
using Dapper;

namespace Fundament.Jobs;

/// <summary>
/// The durable job queue (tables <c>jobs_*</c>). A job is a row before anyone is told it was
/// accepted. Workers claim due jobs with a lease (PostgreSQL <c>FOR UPDATE SKIP LOCKED</c>, so
/// replicas never claim the same row; SQLite serializes writers) and renew it while the handler
/// runs. A worker that dies stops renewing: the lease runs out and the next pass puts the job back
/// in the queue, so a <c>kill -9</c> loses nothing that was acknowledged.
/// </summary>
internal sealed class JobStore(IDatabase database, TimeProvider time, IOptions<JobsOptions> options) : IJobQueue, Fundament.Core.Quotas.IQuotaMeter
{
    private const string Columns = """
        id AS Id, type AS Type, payload AS Payload, priority AS Priority, state AS State, attempts AS Attempts, max_attempts AS MaxAttempts,
        progress AS Progress, cancel_requested AS CancelRequested, idempotency_key AS IdempotencyKey, run_at AS RunAt, lease_owner AS LeaseOwner,
        last_error AS LastError, created_at AS CreatedAt, started_at AS StartedAt, finished_at AS FinishedAt
        """;

    /// <summary>Raised after a job is stored, so a worker in this process can start it without waiting for its poll.</summary>
    public event Action<string>? Enqueued;

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The principal's queued and running jobs (the queuedJobs quota).</summary>
    public async Task<long> UsedAsync(string actor, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM jobs_items WHERE owner = @actor AND state IN ('queued', 'running')", new { actor }, cancellationToken: cancellationToken));
    }

    public string Quota => Fundament.Core.Quotas.Quota.QueuedJobs;

    public async Task<string> EnqueueAsync(JobRequest request, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(request.Type);
        var id = Guid.CreateVersion7().ToString();
        var now = Now;
        await using var connection = await database.OpenAsync(cancellationToken);
        if (request.IdempotencyKey is not null && await ExistingAsync(connection, request.IdempotencyKey, cancellationToken) is { } existing)
        {
            if (request.ReviveDead)
            {
                await RetryDeadAsync(connection, existing, request.Type, cancellationToken);
            }
            return existing;
        }
        try
        {
            // In a transaction of its own, which inside a unit of work is a savepoint: on PostgreSQL
            // the expected unique violation below would otherwise abort the caller's whole unit.
            await database.InTransactionAsync((insert, transaction) => insert.ExecuteAsync(new CommandDefinition("""
                INSERT INTO jobs_items (id, type, payload, priority, state, attempts, max_attempts, progress, cancel_requested, idempotency_key, run_at, created_at, owner)
                VALUES (@id, @Type, @Payload, @Priority, 'queued', 0, @maxAttempts, 0, FALSE, @IdempotencyKey, @runAt, @now, @Owner)
                """, new
            {
                id, request.Type, request.Payload, request.Priority, request.IdempotencyKey, request.Owner,
                maxAttempts = request.MaxAttempts ?? options.Value.MaxAttempts,
                runAt = request.RunAt?.ToUnixTimeMilliseconds() ?? now, now,
            }, transaction, cancellationToken: cancellationToken)), cancellationToken);
        }
        catch (DbException ex) when (request.IdempotencyKey is not null && database.Dialect.IsUniqueViolation(ex))
        {
            // Another replica enqueued the same key between our check and insert.
            if (await ExistingAsync(connection, request.IdempotencyKey, cancellationToken) is { } raced)
            {
                return raced;
            }
            throw;
        }
        Enqueued?.Invoke(request.Type);
        return id;
    }

    private async Task RetryDeadAsync(DbConnection connection, string id, string type, CancellationToken cancellationToken)
    {
        if (await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE jobs_items SET state = 'queued', attempts = 0, run_at = @now, finished_at = NULL, cancel_requested = FALSE, progress = 0
            WHERE id = @id AND state = 'dead'
            """, new { id, now = Now }, cancellationToken: cancellationToken)) == 1)
        {
            Enqueued?.Invoke(type);
        }
    }

    private static Task<string?> ExistingAsync(DbConnection connection, string key, CancellationToken cancellationToken) =>
        connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition("SELECT id FROM jobs_items WHERE idempotency_key = @key", new { key }, cancellationToken: cancellationToken));

    /// <summary>Leases up to <paramref name="limit"/> due jobs of <paramref name="type"/>, highest priority first.</summary>
    public async Task<IReadOnlyList<JobRow>> ClaimAsync(string type, string owner, int limit, CancellationToken cancellationToken)
    {
        var now = Now;
        var leaseUntil = now + (long)options.Value.LeaseDuration.TotalMilliseconds;
        return await database.InTransactionAsync(async (connection, transaction) =>
            (await connection.QueryAsync<JobRow>(database.Command($$"""
                UPDATE jobs_items SET state = 'running', lease_owner = @owner, lease_until = @leaseUntil, attempts = attempts + 1,
                    started_at = @now, progress = 0
                WHERE id IN (
                    SELECT id FROM jobs_items
                    WHERE type = @type AND state = 'queued' AND run_at <= @now
                    ORDER BY priority DESC, run_at, id LIMIT @limit{skip_locked})
                RETURNING {{Columns}}
                """, new { owner, type, now, leaseUntil, limit }, transaction, cancellationToken: cancellationToken)))
                .OrderByDescending(j => j.Priority).ThenBy(j => j.RunAt).ToList(), cancellationToken);
    }

    /// <summary>
    /// Renews the lease of a running job. Returns false when this worker no longer holds it (it ran
    /// out, or the job was cancelled and finished meanwhile); <paramref name="cancelRequested"/>
    /// tells the worker to stop the handler.
    /// </summary>
    public async Task<(bool Held, bool CancelRequested)> HeartbeatAsync(string id, string owner, CancellationToken cancellationToken)
    {
        var now = Now;
        await using var connection = await database.OpenAsync(cancellationToken);
        var cancel = await connection.QuerySingleOrDefaultAsync<long?>(new CommandDefinition("""
            UPDATE jobs_items SET lease_until = @leaseUntil
            WHERE id = @id AND lease_owner = @owner AND state = 'running'
            RETURNING CAST(CASE WHEN cancel_requested THEN 1 ELSE 0 END AS BIGINT)
            """, new { id, owner, leaseUntil = now + (long)options.Value.LeaseDuration.TotalMilliseconds }, cancellationToken: cancellationToken));
        return cancel is { } c ? (true, c == 1) : (false, false);
    }

    public async Task ProgressAsync(string id, string owner, int percent, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE jobs_items SET progress = @percent WHERE id = @id AND lease_owner = @owner AND state = 'running'",
            new { id, owner, percent }, cancellationToken: cancellationToken));
    }

    /// <summary>Records the end of an attempt, if this worker still holds the job.</summary>
    public async Task<string?> FinishAsync(JobRow job, string owner, JobOutcome outcome, string? error, CancellationToken cancellationToken)
    {
        var now = Now;
        var state = outcome switch
        {
            JobOutcome.Succeeded => JobState.Succeeded,
            JobOutcome.Cancelled => JobState.Cancelled,
            JobOutcome.Permanent => JobState.Dead,
            _ => job.Attempts >= job.MaxAttempts ? JobState.Dead : JobState.Queued,
        };
        var runAt = state == JobState.Queued ? now + (long)Backoff((int)job.Attempts).TotalMilliseconds : job.RunAt;
        await using var connection = await database.OpenAsync(cancellationToken);
        var updated = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE jobs_items SET state = @state, run_at = @runAt, last_error = @error, lease_owner = NULL, lease_until = NULL,
                progress = CASE WHEN @state = 'succeeded' THEN 100 ELSE progress END,
                finished_at = CASE WHEN @state = 'queued' THEN NULL ELSE @now END
            WHERE id = @id AND lease_owner = @owner AND state = 'running'
            """, new { id = job.Id, owner, state, runAt, error = Truncate(error), now }, cancellationToken: cancellationToken));
        return updated == 1 ? state : null;
    }

    /// <summary>Puts jobs whose worker stopped renewing their lease back in the queue (or the dead letter when out of attempts).</summary>
    public async Task<int> RecoverExpiredAsync(CancellationToken cancellationToken)
    {
        var now = Now;
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE jobs_items SET
                state = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN @now ELSE NULL END,
                run_at = @now, lease_owner = NULL, lease_until = NULL,
                last_error = 'the worker running it stopped before finishing (its lease expired)'
            WHERE state = 'running' AND lease_until < @now
            """, new { now }, cancellationToken: cancellationToken));
    }

    /// <summary>Deletes succeeded and cancelled jobs older than the retention. Dead jobs stay until retried or handled.</summary>
    public async Task<int> PurgeFinishedAsync(CancellationToken cancellationToken)
    {
        var before = Now - (long)options.Value.RetainFinished.TotalMilliseconds;
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM jobs_items WHERE state IN ('succeeded', 'cancelled') AND finished_at < @before", new { before }, cancellationToken: cancellationToken));
    }

    /// <summary>Full jitter over an exponential back-off: spreads retries of jobs that failed together.</summary>
    public TimeSpan Backoff(int attempt)
    {
        var o = options.Value;
        var ceiling = Math.Min(o.RetryMax.TotalMilliseconds, o.RetryBase.TotalMilliseconds * Math.Pow(2, Math.Max(0, attempt - 1)));
        return TimeSpan.FromMilliseconds(ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2);
    }

    public async Task<string?> StateAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<string?>(new CommandDefinition("SELECT state FROM jobs_items WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    public async Task<JobResponse?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<JobRow>(new CommandDefinition($"SELECT {Columns} FROM jobs_items WHERE id = @id", new { id }, cancellationToken: cancellationToken));
        return row?.ToResponse();
    }

    public async Task<IReadOnlyList<JobResponse>> ListAsync(string? state, string? type, string? after, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<JobRow>(new CommandDefinition($"""
            SELECT {Columns} FROM jobs_items
            WHERE (@state IS NULL OR state = @state) AND (@type IS NULL OR type = @type) AND (@after IS NULL OR id < @after)
            ORDER BY id DESC LIMIT @limit
            """, new { state, type, after, limit }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToResponse()).ToList();
    }

    /// <summary>Gives a dead or cancelled job a fresh set of attempts. False when the job is in another state.</summary>
    public async Task<bool> RetryAsync(string id, CancellationToken cancellationToken)
    {
        var now = Now;
        await using var connection = await database.OpenAsync(cancellationToken);
        var updated = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE jobs_items SET state = 'queued', attempts = 0, run_at = @now, finished_at = NULL, cancel_requested = FALSE, progress = 0
            WHERE id = @id AND state IN ('dead', 'cancelled')
            """, new { id, now }, cancellationToken: cancellationToken));
        if (updated == 1 && await connection.QuerySingleAsync<string>(new CommandDefinition("SELECT type FROM jobs_items WHERE id = @id", new { id }, cancellationToken: cancellationToken)) is { } type)
        {
            Enqueued?.Invoke(type);
        }
        return updated == 1;
    }

    /// <summary>
    /// Cancels a queued job at once; a running one is asked to stop (its worker sees the request
    /// at the next heartbeat and cancels the handler). Returns the state after the call, or null
    /// when the job does not exist.
    /// </summary>
    public async Task<string?> CancelAsync(string id, CancellationToken cancellationToken)
    {
        var now = Now;
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE jobs_items SET
                    state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
                    finished_at = CASE WHEN state = 'queued' THEN @now ELSE finished_at END,
                    cancel_requested = CASE WHEN state IN ('queued', 'running') THEN TRUE ELSE cancel_requested END
                WHERE id = @id
                """, new { id, now }, transaction, cancellationToken: cancellationToken));
            return await connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition("SELECT state FROM jobs_items WHERE id = @id", new { id }, transaction, cancellationToken: cancellationToken));
        }, cancellationToken);
    }

    public async Task SetPausedAsync(string type, bool paused, CancellationToken cancellationToken)
    {
        var now = Now;
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            var updated = await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE jobs_queues SET paused = @paused, updated_at = @now WHERE type = @type", new { type, paused, now }, transaction, cancellationToken: cancellationToken));
            if (updated == 0)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO jobs_queues (type, paused, updated_at) VALUES (@type, @paused, @now)", new { type, paused, now }, transaction, cancellationToken: cancellationToken));
            }
            return updated;
        }, cancellationToken);
        if (!paused)
        {
            Enqueued?.Invoke(type);
        }
    }

    public async Task<IReadOnlySet<string>> PausedAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<string>(new CommandDefinition("SELECT type FROM jobs_queues WHERE paused = TRUE", cancellationToken: cancellationToken)))
            .ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Depth per type and state, and the age of the oldest due job per type: the numbers the metrics and the queues API show.</summary>
    public async Task<IReadOnlyList<QueueSnapshot>> SnapshotAsync(CancellationToken cancellationToken)
    {
        var now = Now;
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Type, string State, long Count, long? Oldest)>(new CommandDefinition("""
            SELECT type, state, COUNT(*), MIN(CASE WHEN state = 'queued' AND run_at <= @now THEN run_at END)
            FROM jobs_items WHERE state IN ('queued', 'running', 'dead') GROUP BY type, state
            """, new { now }, cancellationToken: cancellationToken));
        return rows.GroupBy(r => r.Type, StringComparer.Ordinal).Select(g => new QueueSnapshot(
            g.Key,
            g.Where(r => r.State == JobState.Queued).Sum(r => r.Count),
            g.Where(r => r.State == JobState.Running).Sum(r => r.Count),
            g.Where(r => r.State == JobState.Dead).Sum(r => r.Count),
            g.Min(r => r.Oldest) is { } oldest ? Math.Max(0, (now - oldest) / 1000.0) : 0)).ToList();
    }

    private static string? Truncate(string? error) => error is { Length: > 2000 } ? error[..2000] + "…" : error;
}

internal enum JobOutcome
{
    Succeeded,
    Failed,
    Permanent,
    Cancelled,
}

internal sealed record QueueSnapshot(string Type, long Queued, long Running, long Dead, double OldestQueuedSeconds);

internal sealed class JobRow
{
    public string Id { get; set; } = "";
    public string Type { get; set; } = "";
    public string Payload { get; set; } = "";
    public long Priority { get; set; }
    public string State { get; set; } = "";
    public long Attempts { get; set; }
    public long MaxAttempts { get; set; }
    public long Progress { get; set; }
    public bool CancelRequested { get; set; }
    public string? IdempotencyKey { get; set; }
    public long RunAt { get; set; }
    public string? LeaseOwner { get; set; }
    public string? LastError { get; set; }
    public long CreatedAt { get; set; }
    public long? StartedAt { get; set; }
    public long? FinishedAt { get; set; }

    public JobResponse ToResponse() => new(
        Id, Type, State, (int)Priority, (int)Attempts, (int)MaxAttempts, (int)Progress, CancelRequested, LastError, IdempotencyKey,
        DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(RunAt),
        StartedAt is { } s ? DateTimeOffset.FromUnixTimeMilliseconds(s) : null,
        FinishedAt is { } f ? DateTimeOffset.FromUnixTimeMilliseconds(f) : null, Payload);
}
