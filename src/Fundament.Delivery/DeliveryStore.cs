using System.Text;
using Dapper;
using Fundament.Core.Keys;

namespace Fundament.Delivery;

/// <summary>
/// The durable delivery queue (tables <c>delivery_*</c>). An item is stored before anyone is told
/// it was accepted, claimed with a lease by one dispatcher at a time, and every attempt is logged;
/// a dispatcher that dies mid-send leaves a lease that runs out, and the item is sent again
/// (at-least-once: receivers dedupe on <c>X-Fundament-Delivery</c>).
/// </summary>
internal sealed class DeliveryStore(IDatabase database, EnvelopeEncryption encryption, TimeProvider time, IOptions<DeliveryOptions> options) : IDeliveryQueue, IEnvelopeHolder
{
    private const string Columns = """
        id, kind, target, event, subject, payload, secret, source, state, attempts, max_attempts AS MaxAttempts, next_attempt_at AS NextAttemptAt,
        last_error AS LastError, created_at AS CreatedAt, delivered_at AS DeliveredAt
        """;

    public string Name => "delivery secrets";

    private static byte[] Aad(string id) => Encoding.UTF8.GetBytes("fundament:delivery:secret:" + id);

    public async Task<string> EnqueueAsync(DeliveryRequest request, CancellationToken cancellationToken)
    {
        var id = request.Id ?? Guid.CreateVersion7().ToString();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        // A named delivery enqueued again (a retried handler) stays the one it was.
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO delivery_items (id, kind, target, event, subject, payload, secret, source, state, attempts, max_attempts, next_attempt_at, created_at)
            VALUES (@id, @Kind, @Target, @Event, @Subject, @Payload, @secret, @Source, 'pending', 0, @maxAttempts, @now, @now)
            ON CONFLICT (id) DO NOTHING
            """, new
        {
            id, request.Kind, request.Target, request.Event, request.Subject, request.Payload,
            secret = request.Secret is null ? null : encryption.Encrypt(Encoding.UTF8.GetBytes(request.Secret), Aad(id)),
            request.Source, maxAttempts = options.Value.MaxAttempts, now,
        }, cancellationToken: cancellationToken));
        return id;
    }

    /// <summary>Due items for this dispatcher, leased so no other replica sends them meanwhile.</summary>
    public async Task<IReadOnlyList<DeliveryItem>> ClaimDueAsync(string owner, int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var leaseMs = (long)(options.Value.Timeout + TimeSpan.FromSeconds(30)).TotalMilliseconds;
        return await database.InTransactionAsync(async (connection, transaction) =>
            (await connection.QueryAsync<DeliveryItem>(database.Command($$"""
                UPDATE delivery_items SET lease_owner = @owner, lease_until = @leaseUntil
                WHERE id IN (
                    SELECT id FROM delivery_items
                    WHERE state = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until < @now)
                    ORDER BY next_attempt_at LIMIT @limit{skip_locked})
                RETURNING {{Columns}}
                """, new { owner, now, leaseUntil = now + leaseMs, limit }, transaction, cancellationToken: cancellationToken))).ToList(), cancellationToken);
    }

    public string? SecretOf(DeliveryItem item) =>
        item.Secret is null ? null : Encoding.UTF8.GetString(encryption.Decrypt(item.Secret, Aad(item.Id)));

    /// <summary>Logs an attempt and moves the item on: delivered, retried later with back-off, or dead.</summary>
    public async Task RecordAsync(DeliveryItem item, string owner, AttemptResult result, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var attempt = (int)item.Attempts + 1;
        var state = result.Success ? DeliveryState.Delivered
            : result.Permanent || attempt >= item.MaxAttempts ? DeliveryState.Dead
            : DeliveryState.Pending;
        var next = state == DeliveryState.Pending ? now + (long)Backoff(attempt).TotalMilliseconds : now;
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO delivery_attempts (id, item_id, attempt, at, status_code, error, duration_ms) VALUES (@id, @itemId, @attempt, @now, @status, @error, @duration)",
                new { id = Guid.CreateVersion7().ToString(), itemId = item.Id, attempt, now, status = result.StatusCode, error = result.Error, duration = (long)result.Duration.TotalMilliseconds },
                transaction, cancellationToken: cancellationToken));
            await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE delivery_items SET attempts = @attempt, state = @state, next_attempt_at = @next, last_error = @error,
                    delivered_at = @deliveredAt, lease_owner = NULL, lease_until = NULL
                WHERE id = @id AND lease_owner = @owner
                """, new { id = item.Id, owner, attempt, state, next, error = result.Error, deliveredAt = result.Success ? now : (long?)null },
                transaction, cancellationToken: cancellationToken));
            return 0;
        }, cancellationToken);
    }

    public async Task<IReadOnlyList<DeliveryResponse>> ListAsync(string? state, string? source, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<DeliveryItem>(new CommandDefinition(
            $"SELECT {Columns} FROM delivery_items WHERE (@state IS NULL OR state = @state) AND (@source IS NULL OR source = @source) ORDER BY created_at DESC LIMIT @limit",
            new { state, source, limit }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToResponse()).ToList();
    }

    public async Task<(DeliveryResponse Item, IReadOnlyList<DeliveryAttempt> Attempts)?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var item = await connection.QuerySingleOrDefaultAsync<DeliveryItem>(new CommandDefinition(
            $"SELECT {Columns} FROM delivery_items WHERE id = @id", new { id }, cancellationToken: cancellationToken));
        if (item is null)
        {
            return null;
        }
        var attempts = await connection.QueryAsync<(long Attempt, long At, long? StatusCode, string? Error, long DurationMs)>(new CommandDefinition(
            "SELECT attempt, at, status_code, error, duration_ms FROM delivery_attempts WHERE item_id = @id ORDER BY attempt", new { id }, cancellationToken: cancellationToken));
        return (item.ToResponse(), attempts.Select(a => new DeliveryAttempt((int)a.Attempt, DateTimeOffset.FromUnixTimeMilliseconds(a.At), (int?)a.StatusCode, a.Error, a.DurationMs)).ToList());
    }

    /// <summary>Gives a dead delivery a fresh set of attempts.</summary>
    public async Task<bool> RetryAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE delivery_items SET state = 'pending', next_attempt_at = @now, max_attempts = attempts + @more WHERE id = @id AND state = 'dead'",
            new { id, now = time.GetUtcNow().ToUnixTimeMilliseconds(), more = options.Value.MaxAttempts }, cancellationToken: cancellationToken)) == 1;
    }

    // Dead items too: an operator may retry them after the old key is gone.
    public Task<RewrapResult> RewrapAsync(EnvelopeEncryption current, CancellationToken cancellationToken) =>
        EnvelopeColumn.RewrapAsync(database, current, "delivery_items", ["id"], "secret", "state <> 'delivered'", cancellationToken);

    private TimeSpan Backoff(int attempt)
    {
        var o = options.Value;
        var exponential = o.RetryBase.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30));
        var capped = Math.Min(exponential, o.RetryMax.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.8 + Random.Shared.NextDouble() * 0.4));
    }
}

/// <summary>A row of <c>delivery_items</c>.</summary>
internal sealed class DeliveryItem
{
    public string Id { get; init; } = "";
    public string Kind { get; init; } = "";
    public string Target { get; init; } = "";
    public string Event { get; init; } = "";
    public string? Subject { get; init; }
    public string Payload { get; init; } = "";
    public byte[]? Secret { get; init; }
    public string? Source { get; init; }
    public string State { get; init; } = DeliveryState.Pending;
    public long Attempts { get; init; }
    public long MaxAttempts { get; init; }
    public long NextAttemptAt { get; init; }
    public string? LastError { get; init; }
    public long CreatedAt { get; init; }
    public long? DeliveredAt { get; init; }

    public DeliveryResponse ToResponse() => new(Id, Kind, DeliveryKind.Display(Kind, Target), Event, Source, State, (int)Attempts, (int)MaxAttempts,
        DateTimeOffset.FromUnixTimeMilliseconds(NextAttemptAt), LastError, DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt),
        DeliveredAt is { } d ? DateTimeOffset.FromUnixTimeMilliseconds(d) : null);
}

/// <summary>How one attempt went. <see cref="Permanent"/> failures are not retried.</summary>
internal sealed record AttemptResult(bool Success, bool Permanent, int? StatusCode, string? Error, TimeSpan Duration);
