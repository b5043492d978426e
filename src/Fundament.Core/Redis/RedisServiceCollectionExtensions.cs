using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Redis;

public static class RedisServiceCollectionExtensions
{
    /// <summary>Binds and validates <c>Fundament:Redis</c>; registers <see cref="RedisConnection"/> (used only when configured).</summary>
    public static IServiceCollection AddFundamentRedis(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<RedisOptions>()
            .Bind(configuration.GetSection(RedisOptions.SectionName))
            .Validate(o => !o.Enabled || Parses(o.Configuration!), "Fundament:Redis:Configuration is not a valid StackExchange.Redis configuration string (host:port[,option=value...]).")
            .Validate(o => o.CommandTimeout >= TimeSpan.FromMilliseconds(10) && o.CommandTimeout <= TimeSpan.FromSeconds(30), "Fundament:Redis:CommandTimeout must be between 00:00:00.010 and 00:00:30.")
            .Validate(o => o.KeyPrefix.Length <= 64, "Fundament:Redis:KeyPrefix must be at most 64 characters.")
            .ValidateOnStart();
        services.TryAddSingleton<RedisConnection>();
        return services;
    }

    private static bool Parses(string configuration)
    {
        try
        {
            return StackExchange.Redis.ConfigurationOptions.Parse(configuration).EndPoints.Count > 0;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
