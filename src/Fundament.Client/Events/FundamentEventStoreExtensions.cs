using Fundament.Client;
using Fundament.Client.Events;

namespace Microsoft.Extensions.Hosting;

/// <summary>Adds Fundament's event store to a service (after <c>AddFundamentClient</c>).</summary>
public static class FundamentEventStoreExtensions
{
    /// <summary>Adds <see cref="IEventStore"/>; <paramref name="map"/> names the event types this service writes and reads, with typed upcasters.</summary>
    /// <exception cref="InvalidOperationException">AddFundamentClient was not called first.</exception>
    public static IHostApplicationBuilder AddFundamentEventStore(this IHostApplicationBuilder builder, Action<EventTypeMap> map)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(map);
        if (!builder.Services.Any(d => d.ServiceType == typeof(FundamentApi)))
        {
            throw new InvalidOperationException("Call builder.AddFundamentClient() before AddFundamentEventStore().");
        }
        var types = new EventTypeMap();
        map(types);
        builder.Services.AddSingleton(types);
        builder.Services.TryAddSingleton<IEventStore, EventStoreClient>();
        return builder;
    }

    /// <summary>
    /// Consumes subscription <paramref name="settings"/> in the background with a scoped
    /// <typeparamref name="THandler"/> per event (see <see cref="IEventHandler"/>).
    /// </summary>
    public static IHostApplicationBuilder AddFundamentSubscription<THandler>(this IHostApplicationBuilder builder, SubscriptionSettings settings, Action<SubscriptionConsumerOptions>? configure = null)
        where THandler : class, IEventHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        var options = new SubscriptionConsumerOptions();
        configure?.Invoke(options);
        builder.Services.TryAddScoped<THandler>();
        builder.Services.AddSingleton<IHostedService>(sp => ActivatorUtilities.CreateInstance<EventSubscriptionWorker<THandler>>(sp, settings, options));
        return builder;
    }
}
