using Fundament.Hosting;
using Fundament.Keys;
using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Alerts;

public static class AlertsServiceCollectionExtensions
{
    /// <summary>Module <c>alerts</c> (needs the delivery module); with <paramref name="runEvaluator"/> this process may evaluate rules.</summary>
    public static IServiceCollection AddAlerts(this IServiceCollection services, IConfiguration configuration, bool runEvaluator)
    {
        services.AddOptions<AlertsOptions>()
            .Bind(configuration.GetSection(AlertsOptions.SectionName))
            .Validate(o => o.EvaluationInterval >= TimeSpan.FromMilliseconds(100) && o.EvaluationInterval <= TimeSpan.FromMinutes(5), "Fundament:Alerts:EvaluationInterval must be between 00:00:00.1 and 00:05:00.")
            .ValidateOnStart();
        services.AddMigrations(new AlertsMigrations());
        services.TryAddSingleton<AlertStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, AlertStore>(sp => sp.GetRequiredService<AlertStore>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, AlertStore>(sp => sp.GetRequiredService<AlertStore>()));
        services.TryAddSingleton<AlertEvaluator>();
        if (runEvaluator && configuration.GetValue(AlertsOptions.SectionName + ":" + nameof(AlertsOptions.EvaluatorEnabled), true))
        {
            services.AddHostedService(sp => sp.GetRequiredService<AlertEvaluator>());
        }
        services.AddPermissions(AlertPermissions.Read, AlertPermissions.Write);
        return services;
    }

    public static IEndpointRouteBuilder MapAlerts(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapAlertsApi();
        return endpoints;
    }
}
