using System.Runtime.CompilerServices;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Fundament.Client.Events;

/// <summary>Fundament's event store, as this service's client: typed appends and reads, snapshots and subscriptions.</summary>
public interface IEventStore
{
    /// <summary>Appends <paramref name="events"/> to <paramref name="stream"/> if it is at <paramref name="expected"/>.</summary>
    /// <exception cref="WrongExpectedVersionException">The stream was elsewhere; nothing was appended.</exception>
    /// <exception cref="HttpRequestException">Refused (no append grant, bad input) or unreachable.</exception>
    Task<AppendResult> AppendAsync(string stream, ExpectedVersion expected, IReadOnlyList<EventData> events, CancellationToken cancellationToken = default);

    /// <summary>The stream's events from <paramref name="fromVersion"/> on, a page at a time; empty when the stream does not exist.</summary>
    IAsyncEnumerable<StoredEvent> ReadAsync(string stream, long fromVersion = 0, CancellationToken cancellationToken = default);

    /// <summary>The latest snapshot, or null.</summary>
    Task<Snapshot<T>?> GetSnapshotAsync<T>(string stream, CancellationToken cancellationToken = default);

    /// <summary>Saves <paramref name="state"/> as the stream's state at <paramref name="version"/>.</summary>
    Task SaveSnapshotAsync<T>(string stream, long version, T state, CancellationToken cancellationToken = default);

    /// <summary>Creates the subscription; an existing one of the same name is left as it is.</summary>
    Task EnsureSubscriptionAsync(SubscriptionSettings settings, CancellationToken cancellationToken = default);

    /// <summary>Leases up to <paramref name="max"/> events, waiting up to <paramref name="wait"/> for the first.</summary>
    Task<IReadOnlyList<LeasedEvent>> PullAsync(string subscription, int max, TimeSpan wait, TimeSpan? lease = null, CancellationToken cancellationToken = default);

    /// <summary>Acknowledges handled events; returns the lease ids that no longer held (handed out again meanwhile).</summary>
    Task<IReadOnlyList<string>> AckAsync(string subscription, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken = default);

    /// <summary>Gives events back to be retried after a backoff, or parks them at once.</summary>
    Task NackAsync(string subscription, IReadOnlyList<string> leaseIds, string reason, bool park = false, CancellationToken cancellationToken = default);

    /// <summary>Gives events back untried: handed out again at once, without using up an attempt.</summary>
    Task ReleaseAsync(string subscription, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken = default);
}

internal sealed class EventStoreClient(FundamentApi api, EventTypeMap map) : IEventStore
{
    private const int Page = 500;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<AppendResult> AppendAsync(string stream, ExpectedVersion expected, IReadOnlyList<EventData> events, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(stream);
        ArgumentNullException.ThrowIfNull(events);
        var body = new
        {
            expectedVersion = expected.Wire,
            events = events.Select(e =>
            {
                var (name, schemaVersion) = map.NameOf(e.Value.GetType());
                return new
                {
                    id = e.Id ?? Guid.CreateVersion7().ToString(),
                    type = name,
                    schemaVersion,
                    data = JsonSerializer.SerializeToElement(e.Value, e.Value.GetType(), map.SerializerOptions),
                    metadata = e.Metadata,
                };
            }).ToList(),
        };
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        using var response = await api.Http.PostAsJsonAsync($"/api/v1/streams/{Uri.EscapeDataString(stream)}/events", body, Json, deadline.Token).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(deadline.Token).ConfigureAwait(false);
            if (problem.TryGetProperty("actualVersion", out var actual))
            {
                throw new WrongExpectedVersionException(stream, actual.GetInt64());
            }
        }
        await FundamentApi.EnsureAsync(response, $"append to '{stream}'", deadline.Token).ConfigureAwait(false);
        var result = await response.Content.ReadFromJsonAsync<AppendAnswer>(Json, deadline.Token).ConfigureAwait(false);
        return new AppendResult(stream, result!.FromVersion, result.ToVersion, result.Position, response.StatusCode == HttpStatusCode.Created);
    }

    public async IAsyncEnumerable<StoredEvent> ReadAsync(string stream, long fromVersion = 0, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(stream);
        for (long? from = fromVersion; from is { } next;)
        {
            using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
            using var response = await api.Http.GetAsync($"/api/v1/streams/{Uri.EscapeDataString(stream)}/events?from={next}&limit={Page}", deadline.Token).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                yield break;
            }
            await FundamentApi.EnsureAsync(response, $"read '{stream}'", deadline.Token).ConfigureAwait(false);
            var page = await response.Content.ReadFromJsonAsync<PageAnswer>(Json, deadline.Token).ConfigureAwait(false);
            foreach (var e in page!.Events)
            {
                yield return e with { Map = map };
            }
            from = page.Next;
        }
    }

    public async Task<Snapshot<T>?> GetSnapshotAsync<T>(string stream, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        using var response = await api.Http.GetAsync($"/api/v1/streams/{Uri.EscapeDataString(stream)}/snapshot", deadline.Token).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        await FundamentApi.EnsureAsync(response, $"read the snapshot of '{stream}'", deadline.Token).ConfigureAwait(false);
        var answer = await response.Content.ReadFromJsonAsync<SnapshotAnswer>(Json, deadline.Token).ConfigureAwait(false);
        return new Snapshot<T>(stream, answer!.Version, answer.Data.Deserialize<T>(map.SerializerOptions)!, answer.RecordedAt);
    }

    public async Task SaveSnapshotAsync<T>(string stream, long version, T state, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        var data = JsonSerializer.SerializeToElement(state, map.SerializerOptions);
        using var response = await api.Http.PutAsJsonAsync($"/api/v1/streams/{Uri.EscapeDataString(stream)}/snapshot", new { version, data }, Json, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"save a snapshot of '{stream}'", deadline.Token).ConfigureAwait(false);
    }

    public async Task EnsureSubscriptionAsync(SubscriptionSettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        object from = long.TryParse(settings.From, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var position) ? position : settings.From;
        using var response = await api.Http.PostAsJsonAsync("/api/v1/subscriptions", new
        {
            name = settings.Name,
            filter = new { streamPrefix = settings.StreamPrefix, type = settings.Type },
            from,
            mode = settings.Mode,
            maxAttempts = settings.MaxAttempts,
        }, Json, deadline.Token).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            // Exists: ours if we may read it (a foreign one answers 403 here, and on every pull).
            using var existing = await api.Http.GetAsync($"/api/v1/subscriptions/{Uri.EscapeDataString(settings.Name)}", deadline.Token).ConfigureAwait(false);
            await FundamentApi.EnsureAsync(existing, $"use subscription '{settings.Name}'", deadline.Token).ConfigureAwait(false);
            return;
        }
        await FundamentApi.EnsureAsync(response, $"create subscription '{settings.Name}'", deadline.Token).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<LeasedEvent>> PullAsync(string subscription, int max, TimeSpan wait, TimeSpan? lease = null, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(wait + FundamentApi.CallTimeout, cancellationToken);
        var query = FormattableString.Invariant($"max={max}&wait={(int)wait.TotalSeconds}") + (lease is { } l ? FormattableString.Invariant($"&lease={(int)l.TotalSeconds}") : "");
        using var response = await api.Http.PostAsync($"/api/v1/subscriptions/{Uri.EscapeDataString(subscription)}/pull?{query}", null, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"pull '{subscription}'", deadline.Token).ConfigureAwait(false);
        var answer = await response.Content.ReadFromJsonAsync<PullAnswer>(Json, deadline.Token).ConfigureAwait(false);
        return answer!.Events.Select(l => l with { Event = l.Event with { Map = map } }).ToList();
    }

    public async Task<IReadOnlyList<string>> AckAsync(string subscription, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        using var response = await api.Http.PostAsJsonAsync($"/api/v1/subscriptions/{Uri.EscapeDataString(subscription)}/ack", new { leaseIds }, Json, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"acknowledge on '{subscription}'", deadline.Token).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<LeaseAnswer>(Json, deadline.Token).ConfigureAwait(false))!.Stale;
    }

    public async Task NackAsync(string subscription, IReadOnlyList<string> leaseIds, string reason, bool park = false, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        var body = new { leaseIds, reason = reason.Length > 1000 ? reason[..1000] : reason, park };
        using var response = await api.Http.PostAsJsonAsync($"/api/v1/subscriptions/{Uri.EscapeDataString(subscription)}/nack", body, Json, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"give back events on '{subscription}'", deadline.Token).ConfigureAwait(false);
    }

    public async Task ReleaseAsync(string subscription, IReadOnlyList<string> leaseIds, CancellationToken cancellationToken = default)
    {
        using var deadline = FundamentApi.Deadline(FundamentApi.CallTimeout, cancellationToken);
        using var response = await api.Http.PostAsJsonAsync($"/api/v1/subscriptions/{Uri.EscapeDataString(subscription)}/nack", new { leaseIds, release = true }, Json, deadline.Token).ConfigureAwait(false);
        await FundamentApi.EnsureAsync(response, $"give back events on '{subscription}'", deadline.Token).ConfigureAwait(false);
    }

    private sealed record AppendAnswer(long FromVersion, long ToVersion, long Position);

    private sealed record PageAnswer(List<StoredEvent> Events, long? Next);

    private sealed record SnapshotAnswer(long Version, JsonElement Data, DateTimeOffset RecordedAt);

    private sealed record PullAnswer(List<LeasedEvent> Events);

    private sealed record LeaseAnswer(int Done, List<string> Stale);
}
