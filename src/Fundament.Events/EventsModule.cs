using Fundament.Events.Api;
using Fundament.Events.Storage;

namespace Fundament.Events;

/// <summary>
/// Module <c>events</c>: an event store. Appends take an expected version, are idempotent by event
/// id and may span streams atomically; <c>$all</c> reads every stream in commit order without
/// gaps. Who may read or append is granted by stream prefix (<c>/api/v1/stream-grants</c>).
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
        services.TryAddSingleton<StreamGrantStore>();
        services.AddSingleton<Core.Quotas.IQuotaMeter, EventsQuotaMeter>();
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapStreamsApi();
        endpoints.MapStreamGrantsApi();
    }
}
