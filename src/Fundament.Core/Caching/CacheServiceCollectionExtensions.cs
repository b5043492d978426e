using System.Diagnostics.Metrics;
using Fundament.Core.Redis;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using ZiggyCreatures.Caching.Fusion;
using ZiggyCreatures.Caching.Fusion.Backplane.StackExchangeRedis;
using ZiggyCreatures.Caching.Fusion.Serialization.SystemTextJson;

namespace Fundament.Core.Caching;

/// <summary>Section <c>Fundament:Cache</c>: the platform's own two-level cache (FusionCache, ADR 0017).</summary>
public sealed class CacheOptions
{
    public const string SectionName = "Fundament:Cache";

    /// <summary>How long a value may be served stale while its source (the database, or Redis as the second level) fails. Default 5 minutes.</summary>
    public TimeSpan FailSafeMaxDuration { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a read waits for Redis (the second level) before going to the source instead. Default 250 ms.</summary>
    public TimeSpan DistributedCacheSoftTimeout { get; set; } = TimeSpan.FromMilliseconds(250);
}

internal sealed class CacheOptionsValidator : SettingsValidator<CacheOptions>
{
    protected override string Section => CacheOptions.SectionName;

    protected override void Check(CacheOptions o, SettingsProblems problems)
    {
        problems.Between(o.FailSafeMaxDuration, TimeSpan.Zero, TimeSpan.FromDays(1));
        problems.Between(o.DistributedCacheSoftTimeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(10));
    }
}

public static class CacheServiceCollectionExtensions
{
    /// <summary>
    /// The platform's cache: FusionCache with its memory level on every node and, when
    /// <c>Fundament:Redis:Configuration</c> is set, Redis as the second level and as the backplane
    /// that evicts a changed entry from every node's memory at once. Without Redis (the embedded
    /// default) it is one node's memory, which is all one node needs.
    /// </summary>
    public static IServiceCollection AddFundamentCache(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSettings<CacheOptions, CacheOptionsValidator>(configuration, CacheOptions.SectionName);
        var options = configuration.GetSection(CacheOptions.SectionName).Get<CacheOptions>() ?? new CacheOptions();
        var redis = !string.IsNullOrWhiteSpace(configuration[$"{RedisOptions.SectionName}:{nameof(RedisOptions.Configuration)}"]);
        var prefix = configuration[$"{RedisOptions.SectionName}:{nameof(RedisOptions.KeyPrefix)}"] ?? new RedisOptions().KeyPrefix;
        var builder = services.AddFusionCache()
            .WithOptions(o =>
            {
                o.CacheKeyPrefix = prefix + "cache:";
                // One installation's evictions stay on its own channel when several share a Redis.
                o.BackplaneChannelPrefix = prefix + "cache";
                // Redis down: stop asking it for a while instead of paying a timeout per read.
                o.DistributedCacheCircuitBreakerDuration = TimeSpan.FromSeconds(2);
                o.BackplaneCircuitBreakerDuration = TimeSpan.FromSeconds(2);
            })
            .WithDefaultEntryOptions(new FusionCacheEntryOptions
            {
                Duration = TimeSpan.FromSeconds(5),
                IsFailSafeEnabled = true,
                FailSafeMaxDuration = options.FailSafeMaxDuration,
                FailSafeThrottleDuration = TimeSpan.FromSeconds(1),
                DistributedCacheSoftTimeout = options.DistributedCacheSoftTimeout,
                DistributedCacheHardTimeout = options.DistributedCacheSoftTimeout * 4,
            })
            .WithSerializer(new FusionCacheSystemTextJsonSerializer(new System.Text.Json.JsonSerializerOptions { IncludeFields = true }));
        if (redis)
        {
            builder
                .WithDistributedCache(sp =>
                {
                    var connection = sp.GetRequiredService<RedisConnection>();
                    return new RedisCache(new RedisCacheOptions { ConnectionMultiplexerFactory = connection.MultiplexerAsync });
                })
                .WithBackplane(sp =>
                {
                    var connection = sp.GetRequiredService<RedisConnection>();
                    return new RedisBackplane(new RedisBackplaneOptions { ConnectionMultiplexerFactory = connection.MultiplexerAsync });
                });
        }
        // FusionCache logs every call at Information: only its warnings and errors belong in the platform's log.
        services.AddLogging(logging => logging.AddFilter("ZiggyCreatures.Caching.Fusion", LogLevel.Warning));
        services.TryAddSingleton<CacheMetrics>();
        // Created at start, so it counts from the first read.
        services.AddHostedService(sp => new CacheMetricsActivation(sp.GetRequiredService<CacheMetrics>()));
        return services;
    }
}

/// <summary>
/// <c>fundament_cache_fail_safe_total</c>: values served stale because their source failed (the
/// database, or Redis as the second level), and <c>fundament_cache_distributed_errors_total</c>:
/// times the second level's circuit breaker opened (Redis failing, reads go to the source).
/// </summary>
public sealed class CacheMetrics
{
    public CacheMetrics(IFusionCache cache, IMeterFactory meters)
    {
        var meter = meters.Create("Fundament.Cache");
        var failSafe = meter.CreateCounter<long>("fundament.cache.fail_safe", "{read}", "Cached values served stale because their source failed.");
        var distributedErrors = meter.CreateCounter<long>("fundament.cache.distributed_errors", "{error}", "Times the second level (Redis) failed and its circuit breaker opened.");
        cache.Events.FailSafeActivate += (_, e) => failSafe.Add(1);
        cache.Events.Distributed.CircuitBreakerChange += (_, e) => distributedErrors.Add(e.IsClosed ? 0 : 1);
    }
}

internal sealed class CacheMetricsActivation(CacheMetrics metrics) : Microsoft.Extensions.Hosting.IHostedService
{
    public CacheMetrics Metrics { get; } = metrics;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
