using Fundament.Client;
using Fundament.Client.Messaging;

namespace Microsoft.Extensions.Hosting;

/// <summary>Adds Fundament's message bus to a service (after <c>AddFundamentClient</c>).</summary>
public static class FundamentBusExtensions
{
    /// <summary>Adds <see cref="IFundamentBus"/>.</summary>
    /// <exception cref="InvalidOperationException">AddFundamentClient was not called first.</exception>
    public static IHostApplicationBuilder AddFundamentBus(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (!builder.Services.Any(d => d.ServiceType == typeof(FundamentApi)))
        {
            throw new InvalidOperationException("Call builder.AddFundamentClient() before AddFundamentBus().");
        }
        builder.Services.TryAddSingleton<IFundamentBus, FundamentBus>();
        return builder;
    }

    /// <summary>
    /// Consumes consumer group <paramref name="settings"/> in the background with a scoped
    /// <typeparamref name="THandler"/> per message (see <see cref="IMessageHandler"/>). Adds the bus
    /// when it is not added yet.
    /// </summary>
    public static IHostApplicationBuilder AddFundamentConsumer<THandler>(this IHostApplicationBuilder builder, ConsumerGroupSettings settings, Action<ConsumerOptions>? configure = null)
        where THandler : class, IMessageHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        builder.AddFundamentBus();
        var options = new ConsumerOptions();
        configure?.Invoke(options);
        builder.Services.TryAddScoped<THandler>();
        builder.Services.TryAddSingleton<IProcessedMessages>(_ => new InMemoryProcessedMessages(options.RememberHandled));
        builder.Services.AddSingleton<IHostedService>(sp => ActivatorUtilities.CreateInstance<MessageConsumerWorker<THandler>>(sp, settings, options));
        return builder;
    }
}
