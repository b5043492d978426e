using Fundament.Client;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using StackExchange.Redis;
using ZiggyCreatures.Caching.Fusion;
using ZiggyCreatures.Caching.Fusion.Backplane.StackExchangeRedis;
using ZiggyCreatures.Caching.Fusion.Serialization.SystemTextJson;

namespace Microsoft.Extensions.Hosting;

/// <summary>Where a service's cache finds its Redis, and how it behaves.</summary>
public sealed class FundamentCacheOptions
{
    /// <summary>
    /// The configuration key holding the Redis configuration string (StackExchange.Redis syntax),
    /// read through the service's configuration, which includes what Fundament's configuration
    /// serves. Default <c>ConnectionStrings:redis</c>. Neither this nor <see cref="RedisSecretPath"/>
    /// set: the cache is memory only.
    /// </summary>
    public string? RedisConfigurationKey { get; set; } = "ConnectionStrings:redis";

    /// <summary>A vault path (read through <see cref="ISecretStore"/>) holding the Redis configuration string; wins over <see cref="RedisConfigurationKey"/>.</summary>
    public string? RedisSecretPath { get; set; }

    /// <summary>Prefix of the service's keys and backplane channel. Default: the service's name from <c>AddFundamentClient</c>, then "app".</summary>
    public string? KeyPrefix { get; set; }

    /// <summary>Default entry duration. Default 1 minute.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a value may be served stale while its factory or Redis fails. Default 10 minutes.</summary>
    public TimeSpan FailSafeMaxDuration { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// Adds the same two-level cache Fundament uses itself to a service (after <c>AddFundamentClient</c>):
/// FusionCache in memory, with Redis as the second level and the backplane that evicts an entry on
/// every replica when one removes it (by key or by tag), fail-safe and stampede protection.
/// </summary>
public static class FundamentCacheExtensions
{
    /// <summary>Adds <see cref="IFusionCache"/>, configured as <paramref name="configure"/> says (Redis from configuration or the vault, or memory only).</summary>
    public static IHostApplicationBuilder AddFundamentCache(this IHostApplicationBuilder builder, Action<FundamentCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new FundamentCacheOptions();
        configure?.Invoke(options);
        var prefix = (options.KeyPrefix ?? builder.Configuration["Fundament:Client:Service"] ?? "app") + ":";
        var fromConfiguration = options.RedisConfigurationKey is { } key ? builder.Configuration[key] : null;
        var cache = builder.Services.AddFusionCache()
            .WithOptions(o =>
            {
                o.CacheKeyPrefix = prefix;
                o.BackplaneChannelPrefix = prefix + "cache";
                o.DistributedCacheCircuitBreakerDuration = TimeSpan.FromSeconds(2);
                o.BackplaneCircuitBreakerDuration = TimeSpan.FromSeconds(2);
            })
            .WithDefaultEntryOptions(new FusionCacheEntryOptions
            {
                Duration = options.Duration,
                IsFailSafeEnabled = true,
                FailSafeMaxDuration = options.FailSafeMaxDuration,
                FailSafeThrottleDuration = TimeSpan.FromSeconds(1),
                DistributedCacheSoftTimeout = TimeSpan.FromMilliseconds(250),
                DistributedCacheHardTimeout = TimeSpan.FromSeconds(1),
            })
            .WithSerializer(new FusionCacheSystemTextJsonSerializer(new System.Text.Json.JsonSerializerOptions { IncludeFields = true }));
        builder.Logging.AddFilter("ZiggyCreatures.Caching.Fusion", Microsoft.Extensions.Logging.LogLevel.Warning);
        if (options.RedisSecretPath is null && string.IsNullOrWhiteSpace(fromConfiguration))
        {
            return builder;
        }
        builder.Services.TryAddSingleton(sp => new RedisMultiplexer(options.RedisSecretPath, fromConfiguration, sp));
        cache
            .WithDistributedCache(sp => new RedisCache(new RedisCacheOptions { ConnectionMultiplexerFactory = sp.GetRequiredService<RedisMultiplexer>().GetAsync }))
            .WithBackplane(sp => new RedisBackplane(new RedisBackplaneOptions { ConnectionMultiplexerFactory = sp.GetRequiredService<RedisMultiplexer>().GetAsync }));
        return builder;
    }

    /// <summary>
    /// One connection for both levels, made on first use (the vault is read then, not at start-up).
    /// A failed attempt (the vault or Redis unreachable, an empty secret) is tried again on the next use.
    /// </summary>
    private sealed class RedisMultiplexer(string? secretPath, string? configuration, IServiceProvider services) : IAsyncDisposable
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private IConnectionMultiplexer? _connection;

        public async Task<IConnectionMultiplexer> GetAsync()
        {
            if (_connection is { } ready)
            {
                return ready;
            }
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                if (_connection is null)
                {
                    var value = secretPath is null ? configuration : await services.GetRequiredService<ISecretStore>().GetAsync(secretPath).ConfigureAwait(false);
                    if (string.IsNullOrWhiteSpace(value))
                    {
                        throw new InvalidOperationException($"The cache's Redis configuration is empty (secret '{secretPath}').");
                    }
                    var parsed = ConfigurationOptions.Parse(value);
                    parsed.AbortOnConnectFail = false;
                    // Fail fast while Redis is away: the cache goes to the source instead of queueing commands.
                    parsed.BacklogPolicy = BacklogPolicy.FailFast;
                    _connection = await ConnectionMultiplexer.ConnectAsync(parsed).ConfigureAwait(false);
                }
                return _connection;
            }
            finally
            {
                _gate.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_connection is { } connection)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            _gate.Dispose();
        }
    }
}
