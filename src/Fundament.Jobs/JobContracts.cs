using System.Text.Json;

namespace Fundament.Jobs;

/// <summary>Where a job is in its life. Lower-case on the wire.</summary>
public static class JobState
{
    /// <summary>Waiting for its run time and a free worker slot (also after a failed attempt, with back-off).</summary>
    public const string Queued = "queued";

    /// <summary>Leased by one worker; the lease is renewed while the handler runs.</summary>
    public const string Running = "running";

    public const string Succeeded = "succeeded";

    /// <summary>Dead letter: out of attempts, or failed permanently. Keeps the last error; can be retried by hand.</summary>
    public const string Dead = "dead";

    public const string Cancelled = "cancelled";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { Queued, Running, Succeeded, Dead, Cancelled };
}

/// <summary>A unit of work to run once, at least once, by a handler of <paramref name="Type"/>.</summary>
/// <param name="Type">Handler name, e.g. <c>media.process</c>; also the queue it waits in.</param>
/// <param name="Payload">JSON the handler reads.</param>
/// <param name="Priority">Higher runs first within a type. Default 0.</param>
/// <param name="IdempotencyKey">When set, enqueuing the same key again returns the existing job instead of adding one.</param>
/// <param name="MaxAttempts">Attempts before the job is dead-lettered; default <c>Fundament:Jobs:MaxAttempts</c>.</param>
/// <param name="RunAt">Not before this time; default now.</param>
public sealed record JobRequest(string Type, string Payload, int Priority = 0, string? IdempotencyKey = null, int? MaxAttempts = null, DateTimeOffset? RunAt = null)
{
    /// <summary>
    /// When the job with the same <see cref="IdempotencyKey"/> is dead, queue it again (a new
    /// request after a failure is a new try) instead of returning it as it is. Default false.
    /// </summary>
    public bool ReviveDead { get; init; }

    /// <summary>
    /// Who the job runs for (<c>user:&lt;id&gt;</c>, <c>client:&lt;id&gt;</c>), counted against that
    /// principal's <c>queuedJobs</c> quota while it is queued or running. Null for the platform's own jobs.
    /// </summary>
    public string? Owner { get; init; }

    public static JobRequest Of<T>(string type, T payload, int priority = 0, string? idempotencyKey = null) =>
        new(type, JsonSerializer.Serialize(payload, JsonSerializerOptions.Web), priority, idempotencyKey);
}

/// <summary>Puts jobs on the durable queue. A job is stored before this returns.</summary>
public interface IJobQueue
{
    /// <summary>Returns the job's id (the existing job's when the idempotency key was seen before).</summary>
    Task<string> EnqueueAsync(JobRequest request, CancellationToken cancellationToken);

    /// <summary>The job's state (<see cref="JobState"/>), or null when there is no such job.</summary>
    Task<string?> StateAsync(string id, CancellationToken cancellationToken);
}

/// <summary>
/// Runs jobs of one type. Handlers must be idempotent: a job whose worker died is run again.
/// Throw <see cref="PermanentJobException"/> for failures a retry cannot fix; any other exception
/// is retried with back-off until the attempts run out.
/// </summary>
public interface IJobHandler
{
    string Type { get; }

    Task HandleAsync(JobContext job, CancellationToken cancellationToken);
}

/// <summary>A failure that retrying will not fix: the job goes to the dead letter at once.</summary>
public sealed class PermanentJobException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The job a handler is running.</summary>
public sealed class JobContext(string id, string type, string payload, int attempt, int maxAttempts, Func<int, CancellationToken, Task> progress)
{
    public string Id { get; } = id;

    public string Type { get; } = type;

    public string Payload { get; } = payload;

    /// <summary>1 for the first attempt.</summary>
    public int Attempt { get; } = attempt;

    public int MaxAttempts { get; } = maxAttempts;

    public T Read<T>() => JsonSerializer.Deserialize<T>(Payload, JsonSerializerOptions.Web)
        ?? throw new PermanentJobException($"job {Id}: the payload is empty");

    /// <summary>Reports progress 0-100, shown in the jobs API.</summary>
    public Task ReportProgressAsync(int percent, CancellationToken cancellationToken) => progress(Math.Clamp(percent, 0, 100), cancellationToken);
}

/// <summary>A job as the API shows it.</summary>
public sealed record JobResponse(
    string Id, string Type, string State, int Priority, int Attempts, int MaxAttempts, int Progress, bool CancelRequested,
    string? LastError, string? IdempotencyKey, DateTimeOffset CreatedAt, DateTimeOffset RunAt, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string Payload);

/// <summary>One queue (job type): its depth and whether it is paused.</summary>
public sealed record JobQueueResponse(string Type, bool Paused, int Concurrency, long Queued, long Running, long Dead, double OldestQueuedSeconds);
