using Fundament.Core.Egress;
using Fundament.Core.Keys;
using Fundament.Core.Quotas;

namespace Fundament.Delivery;

/// <summary>
/// Module <c>delivery</c>: the durable outbound queue (webhooks, Slack, e-mail) and webhook
/// subscriptions. Every node can enqueue; control nodes dispatch.
/// </summary>
public sealed class DeliveryModule : FundamentModule
{
    public override string Name => "delivery";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(DeliveryPermissions.Manage, "See and retry outbound deliveries; see every webhook."),
        new(DeliveryPermissions.WebhooksOwn, "Subscribe webhooks to one's own events.", BuiltInRoles.User),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<DeliveryOptions, DeliveryOptionsValidator>(context.Configuration, DeliveryOptions.SectionName);
        services.TryAddSingleton<DeliveryStore>();
        services.TryAddSingleton<IDeliveryQueue>(sp => sp.GetRequiredService<DeliveryStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, DeliveryStore>(sp => sp.GetRequiredService<DeliveryStore>()));
        services.TryAddSingleton<WebhookStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IDomainEventHandler, WebhookStore>(sp => sp.GetRequiredService<WebhookStore>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, WebhookStore>(sp => sp.GetRequiredService<WebhookStore>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IQuotaMeter, WebhookStore>(sp => sp.GetRequiredService<WebhookStore>()));
        services.TryAddSingleton<DeliverySender>();
        services.TryAddSingleton<DeliveryDispatcher>();
        foreach (var (name, purpose) in new[] { (DeliverySender.WebhookClientName, EgressPurpose.Webhooks), (DeliverySender.AlertClientName, EgressPurpose.AlertChannels) })
        {
            services.AddHttpClient(name, client => client.Timeout = Timeout.InfiniteTimeSpan)
                .ConfigurePrimaryHttpMessageHandler(sp => sp.GetRequiredService<EgressConnector>().Guard(
                    new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, ConnectTimeout = TimeSpan.FromSeconds(10) }, purpose))
                // The URL of a Slack webhook is its secret: the factory's own log lines would print it.
                .RemoveAllLoggers();
        }
        if (context.Runs(FundamentRoles.Control) && context.Enabled(DeliveryOptions.SectionName, nameof(DeliveryOptions.DispatcherEnabled)))
        {
            services.AddHostedService(sp => sp.GetRequiredService<DeliveryDispatcher>());
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapDeliveryApi();
        endpoints.MapWebhooksApi();
    }
}
