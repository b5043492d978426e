namespace Fundament.Registry.Instances;

/// <summary>
/// Publishes the registry's domain events from its outbox, the status history: every registration
/// (<c>instance.registered</c>), status change (<c>instance.status_changed</c>) and deregistration
/// (<c>instance.deregistered</c>) is written there in the transaction of the change, and this
/// publisher (one control node at a time, by lease) puts it on the bus and marks it, oldest first.
/// A crash between the two publishes it again (at least once; consumers dedupe on the change's id
/// in <c>data.changeId</c>). The audience is the principal that registered the instance, so its
/// owner's webhooks receive it.
/// </summary>
internal sealed class RegistryEventPublisher(
    RegistryStore store, IEventPublisher events, LeaseStore leases, ILogger<RegistryEventPublisher> logger) : OutboxPublisher(leases, LeaseName, logger)
{
    public const string LeaseName = "registry-events";

    protected override Task NextChange() => store.Changes.NextAsync();

    /// <summary>Publishes up to 100 unpublished changes, oldest first; returns how many.</summary>
    public override async Task<int> PassAsync(CancellationToken cancellationToken)
    {
        var changes = await store.UnpublishedAsync(100, cancellationToken);
        foreach (var change in changes)
        {
            var name = change.FromStatus is null ? RegistryEvents.Registered
                : change.ToStatus == "deregistered" ? RegistryEvents.Deregistered
                : RegistryEvents.StatusChanged;
            await events.PublishAsync(name, change.Audience ?? "system", new
            {
                changeId = change.Id,
                instanceId = change.InstanceId,
                service = change.Service,
                from = change.FromStatus,
                to = change.ToStatus,
                output = change.Output,
                at = DateTimeOffset.FromUnixTimeMilliseconds(change.At),
            }, cancellationToken, eventId: change.Id);
            await store.MarkPublishedAsync(change.Id, cancellationToken);
        }
        return changes.Count;
    }
}

/// <summary>A status change whose domain event is not out yet.</summary>
internal sealed record UnpublishedChange
{
    public string Id { get; init; } = "";
    public string InstanceId { get; init; } = "";
    public string Service { get; init; } = "";
    public long At { get; init; }
    public string? FromStatus { get; init; }
    public string ToStatus { get; init; } = "";
    public string? Output { get; init; }
    public string? Audience { get; init; }
}

/// <summary>The domain events of the registry.</summary>
public static class RegistryEvents
{
    public const string Registered = "instance.registered";
    public const string StatusChanged = "instance.status_changed";
    public const string Deregistered = "instance.deregistered";
}
