using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Fundament.Client.Messaging;

/// <summary>Fundament's message bus (<c>/api/v1/topics</c>), for a service that publishes and consumes.</summary>
public interface IFundamentBus
{
    /// <summary>
    /// Publishes <paramref name="body"/> (serialized with the web defaults of System.Text.Json) to
    /// every consumer group of <paramref name="topic"/>. Returns once the message is stored durably.
    /// </summary>
    /// <remarks>Give a stable <see cref="PublishOptions.Id"/> to make a retried publish idempotent: a re-sent id is reported as a duplicate and not delivered again.</remarks>
    Task<PublishReceipt> PublishAsync<T>(string topic, T body, PublishOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Publishes several messages to <paramref name="topic"/> in one request and one transaction:
    /// all stored durably, or none. Receipts are in the order given.
    /// </summary>
    Task<IReadOnlyList<PublishReceipt>> PublishBatchAsync<T>(string topic, IReadOnlyList<(T Body, PublishOptions? Options)> messages, CancellationToken cancellationToken = default);

    /// <summary>Creates the consumer group, or accepts the caller's existing one with the same settings.</summary>
    Task EnsureGroupAsync(ConsumerGroupSettings settings, CancellationToken cancellationToken = default);

    /// <summary>Leases up to <paramref name="max"/> messages, waiting up to <paramref name="wait"/> for some.</summary>
    Task<IReadOnlyList<ReceivedMessage>> PullAsync(string topic, string group, int max, TimeSpan wait, TimeSpan? lease = null, CancellationToken cancellationToken = default);

    /// <summary>Acknowledges handled messages. Returns the lease ids that no longer held (the message may be handled again elsewhere).</summary>
    Task<IReadOnlyList<string>> AckAsync(string topic, string group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken = default);

    /// <summary>Gives a message back after a failure: retried with the group's backoff, or dead-lettered at once with <paramref name="deadLetter"/>.</summary>
    Task NackAsync(string topic, string group, string leaseId, string reason, string? exceptionType = null, bool deadLetter = false, CancellationToken cancellationToken = default);

    /// <summary>Gives messages back untried (no attempt used up): a consumer stopping mid-batch.</summary>
    Task ReleaseAsync(string topic, string group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken = default);
}

/// <param name="Id">The message id; default a new UUID v7. A re-sent id (within the server's dedupe window) is a duplicate.</param>
/// <param name="Key">Orders the message in ordered groups: one key's messages are handled one at a time, in publish order.</param>
/// <param name="Headers">Correlation ids and the like.</param>
public sealed record PublishOptions(string? Id = null, string? Key = null, IReadOnlyDictionary<string, string>? Headers = null);

/// <param name="Id">The message id (given or generated).</param>
/// <param name="Topic">The topic published to.</param>
/// <param name="Sequence">The message's place in its topic.</param>
/// <param name="Duplicate">True when the id had been published before: nothing new was stored.</param>
public sealed record PublishReceipt(string Id, string Topic, long Sequence, bool Duplicate);

/// <summary>A consumer group as a service declares it.</summary>
/// <param name="Topic">The topic it consumes.</param>
/// <param name="Group">Its name: every replica of the service uses the same one and they share the messages.</param>
/// <param name="MaxAttempts">Deliveries before a message becomes a dead letter.</param>
/// <param name="Ordered">One key's messages one at a time, in order.</param>
/// <param name="DeadLetter">Keep messages out of attempts as dead letters (true) or drop them.</param>
/// <param name="BackoffInitial">First retry delay, doubled per attempt up to <paramref name="BackoffMax"/>. Default 1 s.</param>
/// <param name="BackoffMax">Longest retry delay. Default 5 minutes.</param>
public sealed record ConsumerGroupSettings(string Topic, string Group, int MaxAttempts = 5, bool Ordered = false, bool DeadLetter = true,
    TimeSpan? BackoffInitial = null, TimeSpan? BackoffMax = null);

/// <summary>A message handed out under a lease.</summary>
/// <param name="Id">The id its publisher gave it: stable across redeliveries, the key for idempotent handling.</param>
/// <param name="Topic">The topic it was published to.</param>
/// <param name="Sequence">Its place in the topic.</param>
/// <param name="Key">Its ordering key, if it has one.</param>
/// <param name="Body">The body as JSON; <see cref="BodyAs{T}"/> deserializes it.</param>
/// <param name="Headers">Its headers, if it has any.</param>
/// <param name="PublishedAt">When it was published.</param>
/// <param name="Attempt">1 on the first delivery.</param>
/// <param name="LeaseId">Settles it; the hosted consumer does that for you.</param>
/// <param name="LeasedUntil">When the lease runs out and the message goes to another consumer.</param>
public sealed record ReceivedMessage(string Id, string Topic, long Sequence, string? Key, JsonElement Body, IReadOnlyDictionary<string, string>? Headers,
    DateTimeOffset PublishedAt, int Attempt, string LeaseId, DateTimeOffset LeasedUntil)
{
    /// <summary>The body as <typeparamref name="T"/> (System.Text.Json web defaults).</summary>
    public T? BodyAs<T>() => Body.Deserialize<T>(FundamentBus.Json);
}

internal sealed class FundamentBus(FundamentApi api) : IFundamentBus
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static string Group(string topic, string group) => $"/api/v1/topics/{Uri.EscapeDataString(topic)}/subscriptions/{Uri.EscapeDataString(group)}";

    public async Task<PublishReceipt> PublishAsync<T>(string topic, T body, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        // The id is fixed before the first try, so a retry after a lost answer is a duplicate, not a second message.
        var request = new { id = options?.Id ?? Guid.CreateVersion7().ToString(), key = options?.Key, body = JsonSerializer.SerializeToElement(body, Json), headers = options?.Headers };
        using var response = await PostRetryingAsync($"/api/v1/topics/{Uri.EscapeDataString(topic)}/messages", request, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"publish to '{topic}'", deadline.Token).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<PublishReceipt>(Json, deadline.Token).ConfigureAwait(false))!;
    }

    public async Task<IReadOnlyList<PublishReceipt>> PublishBatchAsync<T>(string topic, IReadOnlyList<(T Body, PublishOptions? Options)> messages, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(messages);
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        var request = new
        {
            messages = messages.Select(m => new { id = m.Options?.Id ?? Guid.CreateVersion7().ToString(), key = m.Options?.Key, body = JsonSerializer.SerializeToElement(m.Body, Json), headers = m.Options?.Headers }).ToList(),
        };
        using var response = await PostRetryingAsync($"/api/v1/topics/{Uri.EscapeDataString(topic)}/messages/batch", request, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"publish {messages.Count} messages to '{topic}'", deadline.Token).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<BatchAnswer>(Json, deadline.Token).ConfigureAwait(false))!.Messages;
    }

    /// <summary>
    /// Posts a publish, and posts it again while the server answers 503 (its broker is away) or 429 (a
    /// group is full), after its Retry-After (1-5 s), until <paramref name="cancellationToken"/> (the
    /// call's deadline). The ids are fixed before the first try, so a publish that did land is a
    /// duplicate the second time, not a second message.
    /// </summary>
    private async Task<HttpResponseMessage> PostRetryingAsync(string path, object request, CancellationToken cancellationToken)
    {
        while (true)
        {
            var response = await api.Http.PostAsJsonAsync(path, request, Json, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode is not (System.Net.HttpStatusCode.ServiceUnavailable or System.Net.HttpStatusCode.TooManyRequests))
            {
                return response;
            }
            var delay = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1);
            delay = delay < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : delay > TimeSpan.FromSeconds(5) ? TimeSpan.FromSeconds(5) : delay;
            try
            {
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Out of time: the last answer (503 or 429) is the caller's, as a clear error.
                return response;
            }
            response.Dispose();
        }
    }

    public async Task EnsureGroupAsync(ConsumerGroupSettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        using var response = await api.Http.PostAsJsonAsync($"/api/v1/topics/{Uri.EscapeDataString(settings.Topic)}/subscriptions", new
        {
            group = settings.Group,
            maxAttempts = settings.MaxAttempts,
            ordered = settings.Ordered,
            deadLetter = settings.DeadLetter,
            backoff = new
            {
                initialSeconds = (settings.BackoffInitial ?? TimeSpan.FromSeconds(1)).TotalSeconds,
                maxSeconds = (settings.BackoffMax ?? TimeSpan.FromMinutes(5)).TotalSeconds,
            },
        }, Json, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"create consumer group '{settings.Group}' on '{settings.Topic}'", deadline.Token).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<ReceivedMessage>> PullAsync(string topic, string group, int max, TimeSpan wait, TimeSpan? lease = null, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(wait + FundamentApi.CallTimeout, cancellationToken);
        var query = FormattableString.Invariant($"max={max}&wait={(int)wait.TotalSeconds}") + (lease is { } l ? FormattableString.Invariant($"&lease={(int)l.TotalSeconds}") : "");
        using var response = await api.Http.PostAsync($"{Group(topic, group)}/pull?{query}", null, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"pull '{group}' on '{topic}'", deadline.Token).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<PullAnswer>(Json, deadline.Token).ConfigureAwait(false))!.Messages;
    }

    public async Task<IReadOnlyList<string>> AckAsync(string topic, string group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        using var response = await api.Http.PostAsJsonAsync($"{Group(topic, group)}/ack", new { leaseIds }, Json, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"acknowledge on '{group}'", deadline.Token).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<SettleAnswer>(Json, deadline.Token).ConfigureAwait(false))!.Stale;
    }

    public async Task NackAsync(string topic, string group, string leaseId, string reason, string? exceptionType = null, bool deadLetter = false, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        var body = new { leaseId, reason = reason.Length > 2000 ? reason[..2000] : reason, exceptionType = exceptionType?.Length > 200 ? exceptionType[..200] : exceptionType, deadLetter };
        using var response = await api.Http.PostAsJsonAsync($"{Group(topic, group)}/nack", body, Json, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"give back a message on '{group}'", deadline.Token).ConfigureAwait(false);
    }

    public async Task ReleaseAsync(string topic, string group, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        using var response = await api.Http.PostAsJsonAsync($"{Group(topic, group)}/nack", new { leaseIds, release = true }, Json, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"give back messages on '{group}'", deadline.Token).ConfigureAwait(false);
    }

    private sealed record PullAnswer(List<ReceivedMessage> Messages);

    private sealed record BatchAnswer(List<PublishReceipt> Messages);

    private sealed record SettleAnswer(int Done, List<string> Stale);
}
