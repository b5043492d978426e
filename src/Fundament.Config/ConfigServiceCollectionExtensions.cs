using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Config;

public static class ConfigServiceCollectionExtensions
{
    /// <summary>Module <c>config</c>.</summary>
    public static IServiceCollection AddConfig(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ConfigOptions>()
            .Bind(configuration.GetSection(ConfigOptions.SectionName))
            .Validate(o => o.MaxValueBytes is >= 1024 and <= 1024 * 1024, "Fundament:Config:MaxValueBytes must be between 1024 and 1048576.")
            .Validate(o => o.HistoryPerKey is >= 1 and <= 100_000, "Fundament:Config:HistoryPerKey must be between 1 and 100000.")
            .ValidateOnStart();
        services.AddMigrations(new ConfigMigrations());
        services.TryAddSingleton<ConfigStore>();
        services.TryAddSingleton<ConfigSchemas>();
        services.TryAddSingleton<Fundament.Modules.IConfigResolver, ConfigResolver>();
        services.AddPermissions(ConfigPermissions.Read, ConfigPermissions.ReadOwn, ConfigPermissions.Write);
        return services;
    }

    public static IEndpointRouteBuilder MapConfig(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapConfigApi();
        return endpoints;
    }
}
