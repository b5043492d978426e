using Fundament.Egress;
using Fundament.Keys;
using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Delivery;

public static class DeliveryServiceCollectionExtensions
{
    /// <summary>Module <c>delivery</c>; with <paramref name="runDispatcher"/> this process also sends.</summary>
    public static IServiceCollection AddDelivery(this IServiceCollection services, IConfiguration configuration, bool runDispatcher)
    {
        services.AddOptions<DeliveryOptions>()
            .Bind(configuration.GetSection(DeliveryOptions.SectionName))
            .Validate(o => o.PollInterval >= TimeSpan.FromMilliseconds(100) && o.PollInterval <= TimeSpan.FromMinutes(1), "Fundament:Delivery:PollInterval must be between 00:00:00.1 and 00:01:00.")
            .Validate(o => o.MaxAttempts is >= 1 and <= 100, "Fundament:Delivery:MaxAttempts must be between 1 and 100.")
            .Validate(o => o.RetryBase > TimeSpan.Zero && o.RetryMax >= o.RetryBase, "Fundament:Delivery:RetryBase must be positive and not above RetryMax.")
            .Validate(o => o.Timeout >= TimeSpan.FromSeconds(1) && o.Timeout <= TimeSpan.FromMinutes(5), "Fundament:Delivery:Timeout must be between 00:00:01 and 00:05:00.")
            .Validate(o => o.MaxConcurrent is >= 1 and <= 256, "Fundament:Delivery:MaxConcurrent must be between 1 and 256.")
            .ValidateOnStart();
        services.AddMigrations(new DeliveryMigrations());
        services.TryAddSingleton<DeliveryStore>();
        services.TryAddSingleton<IDeliveryQueue>(sp => sp.GetRequiredService<DeliveryStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, DeliveryStore>(sp => sp.GetRequiredService<DeliveryStore>()));
        services.TryAddSingleton<WebhookStore>();
        services.TryAddSingleton<Fundament.Modules.IEventPublisher>(sp => sp.GetRequiredService<WebhookStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, WebhookStore>(sp => sp.GetRequiredService<WebhookStore>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Fundament.Quotas.IQuotaMeter, WebhookStore>(sp => sp.GetRequiredService<WebhookStore>()));
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
        if (runDispatcher && configuration.GetValue(DeliveryOptions.SectionName + ":" + nameof(DeliveryOptions.DispatcherEnabled), true))
        {
            services.AddHostedService(sp => sp.GetRequiredService<DeliveryDispatcher>());
        }
        services.AddPermissions(DeliveryPermissions.Manage, Permissions.WebhooksOwn);
        return services;
    }

    public static IEndpointRouteBuilder MapDelivery(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapDeliveryApi();
        endpoints.MapWebhooksApi();
        return endpoints;
    }
}
