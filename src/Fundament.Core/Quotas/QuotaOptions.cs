namespace Fundament.Core.Quotas;

/// <summary>
/// Section <c>Fundament:Quotas</c>: the limits of principals that have no override of their own and
/// no role with one. Administrators adjust users and roles at runtime (<c>/api/v1/quotas</c>). An
/// absent or empty value means unlimited. The built-in <c>admin</c> role is unlimited unless a role
/// override says otherwise.
/// </summary>
public sealed class QuotaOptions
{
    public const string SectionName = "Fundament:Quotas";

    /// <summary>Default 10 GiB.</summary>
    public long? StoredBytes { get; set; } = 10L << 30;

    /// <summary>Default 100,000.</summary>
    public long? Assets { get; set; } = 100_000;

    /// <summary>Default 20.</summary>
    public long? PendingUploads { get; set; } = 20;

    /// <summary>Default 25.</summary>
    public long? WebhookSubscriptions { get; set; } = 25;

    /// <summary>Default 25.</summary>
    public long? ApiKeys { get; set; } = 25;

    /// <summary>Default 16 (per node).</summary>
    public long? ConcurrentWatches { get; set; } = 16;

    /// <summary>Default 1,000.</summary>
    public long? QueuedJobs { get; set; } = 1_000;

    /// <summary>Default 1,000,000.</summary>
    public long? StoredEvents { get; set; } = 1_000_000;

    public long? Default(string quota) => quota switch
    {
        Quota.StoredBytes => StoredBytes,
        Quota.Assets => Assets,
        Quota.PendingUploads => PendingUploads,
        Quota.WebhookSubscriptions => WebhookSubscriptions,
        Quota.ApiKeys => ApiKeys,
        Quota.ConcurrentWatches => ConcurrentWatches,
        Quota.QueuedJobs => QueuedJobs,
        Quota.StoredEvents => StoredEvents,
        _ => throw new ArgumentOutOfRangeException(nameof(quota), quota, "unknown quota"),
    };
}
