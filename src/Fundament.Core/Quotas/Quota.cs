using System.Security.Claims;

namespace Fundament.Core.Quotas;

/// <summary>
/// The quotas one principal (a user or a service client) is held to. Each has a limit, resolved
/// from the principal's own override, else the most generous of its roles, else the configured
/// default (<see cref="QuotaOptions"/>), and a usage the owning module measures
/// (<see cref="IQuotaMeter"/>). Going over answers 413 (bytes) or 429 (counts) and writes nothing.
/// </summary>
public static class Quota
{
    /// <summary>Bytes of media originals the principal owns (trashed and archived included, until purged).</summary>
    public const string StoredBytes = "storedBytes";

    /// <summary>Media assets the principal owns.</summary>
    public const string Assets = "assets";

    /// <summary>Unfinished tus uploads the principal has open.</summary>
    public const string PendingUploads = "pendingUploads";

    /// <summary>Webhook subscriptions the principal owns.</summary>
    public const string WebhookSubscriptions = "webhookSubscriptions";

    /// <summary>Active (unrevoked, unexpired) API keys of the user.</summary>
    public const string ApiKeys = "apiKeys";

    /// <summary>Blocking watches (<c>?index=&amp;wait=</c>) the principal holds open at once, per node.</summary>
    public const string ConcurrentWatches = "concurrentWatches";

    /// <summary>Jobs started on the principal's behalf that are queued or running.</summary>
    public const string QueuedJobs = "queuedJobs";

    /// <summary>Events the principal has appended to the event store.</summary>
    public const string StoredEvents = "storedEvents";

    public static readonly IReadOnlyList<string> All =
        [StoredBytes, Assets, PendingUploads, WebhookSubscriptions, ApiKeys, ConcurrentWatches, QueuedJobs, StoredEvents];

    public static bool IsKnown(string name) => All.Contains(name, StringComparer.Ordinal);

    /// <summary>The answer going over <paramref name="quota"/> gets: 413 for sizes, 429 for counts.</summary>
    public static int StatusFor(string quota) => quota == StoredBytes ? 413 : 429;
}

/// <summary>Who a quota applies to: the owner key modules store (<c>user:&lt;id&gt;</c>, <c>client:&lt;id&gt;</c>) and the principal's current roles.</summary>
public sealed record QuotaSubject(string Actor, IReadOnlyList<string> Roles)
{
    public static QuotaSubject Of(ClaimsPrincipal principal) => new(principal.ActorId() ?? "anonymous", principal.RolesOf());
}

/// <summary>A limit and where it came from: <c>user</c>, <c>role:&lt;name&gt;</c> or <c>default</c>. Null means unlimited.</summary>
public sealed record QuotaLimit(long? Limit, string Source);

/// <summary>One quota of one principal, as <c>GET /api/v1/me/quotas</c> reports it.</summary>
public sealed record QuotaState(string Name, long? Limit, long Used, string Source);

/// <summary>Measures one quota's usage; the module owning the counted things implements it.</summary>
/// <remarks>Several modules may meter one quota; its usage is then their sum.</remarks>
public interface IQuotaMeter
{
    string Quota { get; }

    /// <summary>Current usage of <paramref name="actor"/>; inside a unit of work it reads the unit's own writes.</summary>
    Task<long> UsedAsync(string actor, CancellationToken cancellationToken);
}

/// <summary>Checks and reports quotas (implemented by the identity module, which keeps the limits).</summary>
public interface IQuotas
{
    Task<QuotaLimit> LimitAsync(QuotaSubject subject, string quota, CancellationToken cancellationToken);

    /// <summary>
    /// Throws <see cref="QuotaExceededException"/> when adding <paramref name="adding"/> would take
    /// the subject past its limit. Inside a unit of work the check is serialized per subject (an
    /// advisory lock on PostgreSQL, the write lock on SQLite), so two concurrent requests cannot both
    /// take the last slot; the caller's writes then commit or roll back with it.
    /// </summary>
    Task EnsureAsync(QuotaSubject subject, string quota, long adding, CancellationToken cancellationToken);

    /// <summary>One quota's limit and usage (usage 0 when no module of this process measures it).</summary>
    Task<QuotaState> StateAsync(QuotaSubject subject, string quota, CancellationToken cancellationToken);

    Task<IReadOnlyList<QuotaState>> StatesAsync(QuotaSubject subject, CancellationToken cancellationToken);
}

/// <summary>Going over a quota; answered 413 or 429 with a problem naming the quota, its limit and the usage.</summary>
public sealed class QuotaExceededException(string quota, long limit, long used, long requested, string source)
    : Exception($"This would exceed the {quota} quota: {used} used of {limit} ({source}), {requested} more requested.")
{
    public string Quota { get; } = quota;

    public long Limit { get; } = limit;

    public long Used { get; } = used;

    public long Requested { get; } = requested;

    public string LimitSource { get; } = source;

    public int Status => Fundament.Core.Quotas.Quota.StatusFor(Quota);
}
