using Fundament.Core.Caching;
using Fundament.Core.Egress;
using Fundament.Core.Keys;
using Fundament.Core.Notifications;
using Fundament.Core.Redis;
using Microsoft.Extensions.Hosting;

namespace Fundament.Core.Hosting;

public static class FundamentServiceCollectionExtensions
{
    /// <summary>
    /// The platform every module stands on: options, roles, clock, storage and migrations, keys,
    /// notifications, HTTP conventions, and the start-up initializer.
    /// </summary>
    public static IServiceCollection AddFundamentCore(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSettings<FundamentOptions, FundamentOptionsValidator>(configuration, FundamentOptions.SectionName);
        services.TryAddSingleton(sp =>
        {
            FundamentRoles.TryParse(sp.GetRequiredService<IOptions<FundamentOptions>>().Value.Roles, out var roles, out _);
            return new RoleSet(roles);
        });
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => NodeIdentity.Create(configuration, sp.GetRequiredService<RoleSet>(), sp.GetRequiredService<TimeProvider>()));
        services.AddFundamentStorage(configuration);
        services.AddFundamentKeys();
        services.AddFundamentNotifications(configuration);
        services.AddFundamentHttp();
        services.AddFundamentRedis(configuration);
        services.AddFundamentCache(configuration);
        services.AddFundamentEgress(configuration);
        services.TryAddSingleton<Modules.IEventPublisher, Modules.DomainEventPublisher>();
        // First hosted service so its StartingAsync runs before any other module's.
        services.TryAddSingleton<FundamentInitializer>();
        services.Insert(0, ServiceDescriptor.Singleton<IHostedService>(sp => sp.GetRequiredService<FundamentInitializer>()));
        return services;
    }
}
