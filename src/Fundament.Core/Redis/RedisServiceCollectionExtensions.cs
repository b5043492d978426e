namespace Fundament.Core.Redis;

public static class RedisServiceCollectionExtensions
{
    /// <summary>Binds and validates <c>Fundament:Redis</c>; registers <see cref="RedisConnection"/> (used only when configured).</summary>
    public static IServiceCollection AddFundamentRedis(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSettings<RedisOptions, RedisOptionsValidator>(configuration, RedisOptions.SectionName);
        services.TryAddSingleton<RedisConnection>();
        return services;
    }
}

internal sealed class RedisOptionsValidator : SettingsValidator<RedisOptions>
{
    protected override string Section => RedisOptions.SectionName;

    protected override void Check(RedisOptions o, SettingsProblems problems)
    {
        problems.Require(!o.Enabled || Parses(o.Configuration!), o.Configuration, "is not a valid StackExchange.Redis configuration string (host:port[,option=value...]).");
        problems.Between(o.CommandTimeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(30));
        problems.Require(o.KeyPrefix.Length <= 64, o.KeyPrefix, "must be at most 64 characters.");
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
