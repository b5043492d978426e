using Dapper;
using Fundament.Core.Storage;

namespace Fundament.Backup;

/// <summary>The record of backups the platform took itself (scheduled or requested through the API).</summary>
internal sealed class BackupRuns(IDatabase database, TimeProvider time, NodeIdentity node)
{
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";

    /// <summary>At most this many runs are kept; older ones are deleted as new ones start.</summary>
    public const int Kept = 1000;

    public async Task<string> StartAsync(string? jobId, string location, string? requestedBy, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7().ToString();
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO backup_runs (id, job_id, location, requested_by, node, started_at, outcome)
                VALUES (@id, @jobId, @location, @requestedBy, @node, @now, @running)
                """, new { id, jobId, location, requestedBy, node = node.Id, now = time.GetUtcNow().ToUnixTimeMilliseconds(), running = Running }, transaction, cancellationToken: cancellationToken));
            await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM backup_runs WHERE started_at < (SELECT started_at FROM backup_runs ORDER BY started_at DESC LIMIT 1 OFFSET @kept)",
                new { kept = Kept }, transaction, cancellationToken: cancellationToken));
            return 0;
        }, cancellationToken);
        return id;
    }

    public async Task FinishAsync(string id, BackupResult? result, bool? verified, int? pruned, string? error, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE backup_runs SET finished_at = @now, outcome = @outcome, name = @name, verified = @verified, objects = @objects, bytes = @bytes, pruned = @pruned, error = @error
            WHERE id = @id
            """, new
        {
            id,
            now = time.GetUtcNow().ToUnixTimeMilliseconds(),
            outcome = error is null ? Succeeded : Failed,
            name = result?.Name,
            verified,
            objects = result?.Blobs,
            bytes = result?.Bytes,
            pruned,
            error = error is { Length: > 1000 } ? error[..1000] : error,
        }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<BackupRunResponse>> ListAsync(int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<RunRow>(new CommandDefinition("""
            SELECT id, job_id AS JobId, location, name, requested_by AS RequestedBy, node, started_at AS StartedAt, finished_at AS FinishedAt,
                   outcome, verified, objects, bytes, pruned, error
            FROM backup_runs ORDER BY started_at DESC, id DESC LIMIT @limit
            """, new { limit }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToResponse()).ToList();
    }

    /// <summary>When the last good backup finished (null if none), and whether the last finished run failed.</summary>
    public async Task<(DateTimeOffset? LastSuccess, bool LastFailed)> StatusAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var last = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT MAX(finished_at) FROM backup_runs WHERE outcome = @succeeded", new { succeeded = Succeeded }, cancellationToken: cancellationToken));
        var lastOutcome = await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT outcome FROM backup_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1", cancellationToken: cancellationToken));
        return (last is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null, lastOutcome == Failed);
    }

    private sealed class RunRow
    {
        public string Id { get; init; } = "";
        public string? JobId { get; init; }
        public string Location { get; init; } = "";
        public string? Name { get; init; }
        public string? RequestedBy { get; init; }
        public string Node { get; init; } = "";
        public long StartedAt { get; init; }
        public long? FinishedAt { get; init; }
        public string Outcome { get; init; } = "";
        public bool? Verified { get; init; }
        public long? Objects { get; init; }
        public long? Bytes { get; init; }
        public long? Pruned { get; init; }
        public string? Error { get; init; }

        public BackupRunResponse ToResponse() => new(Id, JobId, Location, Name, RequestedBy, Node, DateTimeOffset.FromUnixTimeMilliseconds(StartedAt),
            FinishedAt is { } f ? DateTimeOffset.FromUnixTimeMilliseconds(f) : null, Outcome, Verified, Objects, Bytes, Pruned is { } p ? (int)p : null, Error);
    }
}

/// <summary>One backup run: where it went, its outcome, whether it was verified, how many old backups it pruned.</summary>
public sealed record BackupRunResponse(
    string Id, string? JobId, string Location, string? Name, string? RequestedBy, string Node, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt,
    string Outcome, bool? Verified, long? Objects, long? Bytes, int? Pruned, string? Error);

/// <summary>The recent runs, newest first, and the schedule.</summary>
public sealed record BackupRunsResponse(string? Schedule, string? To, int Retention, DateTimeOffset? NextRun, DateTimeOffset? LastSuccess, IReadOnlyList<BackupRunResponse> Runs);
