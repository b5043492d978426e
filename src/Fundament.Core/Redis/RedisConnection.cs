using StackExchange.Redis;
using IDatabase = StackExchange.Redis.IDatabase;

namespace Fundament.Core.Redis;

/// <summary>
/// The process's one multiplexed Redis connection. It connects lazily and never blocks start-up:
/// with Redis down the process still starts, commands fail fast (no backlog) and the connection
/// keeps retrying in the background, so callers can choose to fail open.
/// </summary>
public sealed class RedisConnection : IAsyncDisposable
{
    private readonly Lazy<Task<ConnectionMultiplexer>> _connection;

    public RedisConnection(IOptions<RedisOptions> options)
    {
        Options = options.Value;
        _connection = new Lazy<Task<ConnectionMultiplexer>>(() => ConnectionMultiplexer.ConnectAsync(Configure(Options)));
    }

    public RedisOptions Options { get; }

    /// <summary>The database, once connected or known to be unreachable (commands then fail at once).</summary>
    public async Task<IDatabase> DatabaseAsync() => (await _connection.Value.ConfigureAwait(false)).GetDatabase();

    /// <summary>The multiplexer itself, for libraries that take one (the cache's second level and backplane).</summary>
    public async Task<IConnectionMultiplexer> MultiplexerAsync() => await _connection.Value.ConfigureAwait(false);

    public async Task<TimeSpan> PingAsync() => await (await DatabaseAsync().ConfigureAwait(false)).PingAsync().ConfigureAwait(false);

    internal static ConfigurationOptions Configure(RedisOptions options)
    {
        var configuration = ConfigurationOptions.Parse(options.Configuration!);
        configuration.AbortOnConnectFail = false;
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        var timeout = (int)options.CommandTimeout.TotalMilliseconds;
        if (!options.Configuration!.Contains("asyncTimeout", StringComparison.OrdinalIgnoreCase))
        {
            configuration.AsyncTimeout = timeout;
        }
        if (!options.Configuration.Contains("syncTimeout", StringComparison.OrdinalIgnoreCase))
        {
            configuration.SyncTimeout = timeout;
        }
        if (!options.Configuration.Contains("connectTimeout", StringComparison.OrdinalIgnoreCase))
        {
            configuration.ConnectTimeout = Math.Max(timeout, 1000);
        }
        configuration.ClientName ??= "fundament";
        return configuration;
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection.IsValueCreated)
        {
            await (await _connection.Value.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
        }
    }
}
