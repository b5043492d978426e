using Fundament.Events.Api;
using Fundament.Events.Storage;

namespace Fundament.Events;

/// <summary>
/// Module <c>events</c>: an event store. Appends take an expected version, are idempotent by event
/// id and may span streams atomically; <c>$all</c> reads every stream in commit order without
/// gaps; a stream's latest snapshot lets a reader start there; declarative upcasts per event type
/// bring old events to the current shape on read; durable subscriptions over it hand events out under leases, by pull or Server-Sent Events,
/// and park what keeps failing. Who may read or append is granted by stream prefix (<c>/api/v1/stream-grants</c>).
/// </summary>
public sealed class EventsModule : FundamentModule
{
    public override string Name => "events";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(EventsPermissions.Admin, "Read and append on every stream; manage stream grants."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<EventsOptions, EventsOptionsValidator>(context.Configuration, EventsOptions.SectionName);
        services.TryAddSingleton<EventStore>();
        services.TryAddSingleton<AppendWriter>();
        services.TryAddSingleton<StreamGrantStore>();
        services.AddSingleton<Core.Quotas.IQuotaMeter, EventsQuotaMeter>();
        services.AddSingleton<Core.Quotas.IQuotaMeter, SnapshotBytesMeter>();
        services.TryAddSingleton<SubscriptionStore>();
        services.TryAddSingleton<SnapshotStore>();
        services.TryAddSingleton<UpcastStore>();
        services.TryAddSingleton<Upcasting.EventUpcaster>();
        services.TryAddSingleton<AppendSignal>();
        services.TryAddSingleton<SubscriptionMetrics>();
        if (context.Runs(ApiRole))
        {
            services.AddHostedService(sp => sp.GetRequiredService<SubscriptionMetrics>());
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapStreamsApi();
        endpoints.MapSnapshotsApi();
        endpoints.MapUpcastsApi();
        endpoints.MapStreamGrantsApi();
        endpoints.MapSubscriptionsApi();
    }
}
