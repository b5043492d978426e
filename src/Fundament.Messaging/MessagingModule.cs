using Fundament.Messaging.Api;
using Fundament.Messaging.Storage;
using Fundament.Messaging.Transport;
using Fundament.Messaging.Transport.RabbitMq;

namespace Fundament.Messaging;

/// <summary>
/// Module <c>messaging</c>: a message bus. Messages published to a topic are stored durably before
/// the answer and delivered to every consumer group of the topic, each to one of its consumers,
/// under leases, at least once; retries back off; ordered groups deliver one key's messages one at
/// a time, in order; what keeps failing becomes a dead letter (in an ordered group it keeps its
/// key's order), listed with why, and replayed or purged. Who may publish or consume is granted by
/// topic prefix (<c>/api/v1/topic-grants</c>). The embedded transport keeps it all in the shared
/// database (see docs/adr/0016-messaging-embedded-transport.md).
/// </summary>
public sealed class MessagingModule : FundamentModule
{
    public override string Name => "messaging";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(MessagingPermissions.Admin, "Publish and consume on every topic; act on every consumer group and its dead letters; manage topic grants."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<MessagingOptions, MessagingOptionsValidator>(context.Configuration, MessagingOptions.SectionName);
        services.TryAddSingleton<MessageStore>();
        services.TryAddSingleton<PublishWriter>();
        if (context.Configuration[$"{MessagingOptions.SectionName}:RabbitMq:Uri"] is { Length: > 0 })
        {
            services.TryAddSingleton<RabbitMqTransport>();
            services.TryAddSingleton<IMessageTransport>(sp => sp.GetRequiredService<RabbitMqTransport>());
            services.AddHostedService<RabbitMqSweeper>();
            services.AddHealthChecks().AddCheck<RabbitMqHealthCheck>("rabbitmq", failureStatus: Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Degraded, tags: ["ready"]);
        }
        else
        {
            services.TryAddSingleton<IMessageTransport, EmbeddedTransport>();
        }
        services.TryAddSingleton<TopicGrantStore>();
        services.TryAddSingleton<PublishSignal>();
        services.TryAddSingleton<MessagingMetrics>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAlertConditionSource, MessagingAlertConditions>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IDomainEventSink, BusEventSink>());
        services.TryAddSingleton<Push.PushSecrets>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Fundament.Core.Keys.IEnvelopeHolder, Push.PushSecrets>(sp => sp.GetRequiredService<Push.PushSecrets>()));
        services.TryAddSingleton<Push.PushDispatcher>();
        services.AddHttpClient(Push.PushDispatcher.ClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(sp => sp.GetRequiredService<Fundament.Core.Egress.EgressConnector>().Guard(
                new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, ConnectTimeout = TimeSpan.FromSeconds(10) }, Fundament.Core.Egress.EgressPurpose.Webhooks))
            // A push URL may carry the receiver's token: the factory's own log lines would print it.
            .RemoveAllLoggers();
        if (context.Runs(FundamentRoles.Control) && context.Enabled($"{MessagingOptions.SectionName}:Push", nameof(PushOptions.Enabled)))
        {
            services.AddHostedService(sp => sp.GetRequiredService<Push.PushDispatcher>());
        }
        services.TryAddSingleton<DomainEventRelay>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, DomainEventRelay>(sp => sp.GetRequiredService<DomainEventRelay>()));
        if (context.Runs(FundamentRoles.Control) && context.Enabled(MessagingOptions.SectionName, nameof(MessagingOptions.RelayEnabled)))
        {
            services.AddHostedService(sp => sp.GetRequiredService<DomainEventRelay>());
        }
        if (context.Runs(ApiRole))
        {
            services.AddHostedService(sp => sp.GetRequiredService<MessagingMetrics>());
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapTopicsApi();
        endpoints.MapConsumerGroupsApi();
        endpoints.MapDeadLettersApi();
        endpoints.MapTopicGrantsApi();
    }
}
