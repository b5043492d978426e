using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;
using System.Threading.RateLimiting;
using Fundament.Core.Redis;
using StackExchange.Redis;
using IDatabase = StackExchange.Redis.IDatabase;

namespace Fundament.Gateway;

/// <summary>
/// One partition of a rate-limit policy, enforced in Redis so every gateway replica shares it.
/// Each decision is one atomic Lua script (no read-modify-write race between replicas):
/// fixed window (INCR with expiry), sliding window (two weighted windows, O(1) memory),
/// token bucket (tokens and refill time in a hash), concurrency (a sorted set of leases that
/// expire, so a crashed gateway cannot hold permits forever). Time comes from the gateway's
/// clock, so all replicas must keep NTP time (a skew of milliseconds is harmless). QueueLimit does
/// not apply: over the limit is refused at once. If Redis fails, the request is let through
/// (FailOpen, default) or refused, and the failure is counted and logged.
/// </summary>
internal sealed partial class RedisRateLimiter : RateLimiter
{
    private const string FixedScript = """
        local count = redis.call('INCR', KEYS[1])
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl < 0 then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          ttl = tonumber(ARGV[2])
        end
        if count > tonumber(ARGV[1]) then return {0, ttl, 0} end
        return {1, 0, tonumber(ARGV[1]) - count}
        """;

    private const string SlidingScript = """
        local limit, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
        local index = math.floor(now / window)
        local state = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
        local w, c, p = tonumber(state[1]) or index, tonumber(state[2]) or 0, tonumber(state[3]) or 0
        if index == w + 1 then p = c; c = 0 elseif index > w + 1 then p = 0; c = 0 elseif index < w then index = w end
        local left = window - (now - index * window)
        local estimate = p * left / window + c
        local allowed = 0
        if estimate + 1 <= limit then c = c + 1; allowed = 1 end
        redis.call('HSET', KEYS[1], 'w', index, 'c', c, 'p', p)
        redis.call('PEXPIRE', KEYS[1], window * 2)
        if allowed == 1 then return {1, 0, math.floor(limit - estimate - 1)} end
        local retry = left
        if c + 1 <= limit and p > 0 then retry = math.ceil((estimate + 1 - limit) * window / p) end
        return {0, retry, 0}
        """;

    private const string TokenBucketScript = """
        local capacity, per, period, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
        local state = redis.call('HMGET', KEYS[1], 't', 'ts')
        local tokens, ts = tonumber(state[1]) or capacity, tonumber(state[2]) or now
        if now < ts then now = ts end
        local periods = math.floor((now - ts) / period)
        if periods > 0 then
          tokens = math.min(capacity, tokens + periods * per)
          ts = ts + periods * period
        end
        local allowed = 0
        if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
        redis.call('HSET', KEYS[1], 't', tokens, 'ts', ts)
        redis.call('PEXPIRE', KEYS[1], (math.ceil(capacity / per) + 1) * period)
        if allowed == 1 then return {1, 0, tokens} end
        return {0, period - (now - ts), 0}
        """;

    private const string ConcurrencyScript = """
        local limit, now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local count = redis.call('ZCARD', KEYS[1])
        if count >= limit then return {0, 1000, 0} end
        redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ttl)
        return {1, 0, limit - count - 1}
        """;

    /// <summary>How long a concurrency permit lives if its gateway dies before releasing it.</summary>
    internal static readonly TimeSpan ConcurrencyLeaseTimeout = TimeSpan.FromMinutes(5);

    private static readonly RateLimitLease Failed = new Lease(false, null, null);

    private readonly RateLimitPolicyOptions _policy;
    private readonly RedisKey _key;
    private readonly RedisConnection _redis;
    private readonly RedisRateLimitHealth _health;
    private readonly bool _failOpen;
    private readonly TimeProvider _time;
    private long _lastUsed;
    private int _held;

    public RedisRateLimiter(string policyName, RateLimitPolicyOptions policy, string partition, RedisConnection redis, RedisRateLimitHealth health, bool failOpen, TimeProvider time)
    {
        _policy = policy;
        // Partitions can be header values: hash them, so keys stay short and carry no client data.
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(partition)).AsSpan(0, 12));
        _key = $"{redis.Options.KeyPrefix}rl:{{{policyName}:{hash}}}:{policy.Algorithm}";
        _redis = redis;
        _health = health;
        _failOpen = failOpen;
        _time = time;
        _lastUsed = time.GetTimestamp();
    }

    public override TimeSpan? IdleDuration => Volatile.Read(ref _held) > 0 ? null : _time.GetElapsedTime(Volatile.Read(ref _lastUsed));

    public override RateLimiterStatistics? GetStatistics() => null;

    /// <summary>No synchronous answer without a round trip: the middleware then awaits <see cref="AcquireAsyncCore"/>.</summary>
    protected override RateLimitLease AttemptAcquireCore(int permitCount) => Failed;

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _lastUsed, _time.GetTimestamp());
        if (permitCount == 0)
        {
            return new Lease(true, null, null);
        }
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var leaseId = _policy.Algorithm == "concurrency" ? Guid.NewGuid().ToString("N") : null;
        try
        {
            var db = await _redis.DatabaseAsync();
            var result = (RedisResult[])(_policy.Algorithm switch
            {
                "sliding" => await db.ScriptEvaluateAsync(SlidingScript, [_key], [_policy.PermitLimit, Ms(_policy.Window), now]),
                "tokenBucket" => await db.ScriptEvaluateAsync(TokenBucketScript, [_key], [_policy.PermitLimit, _policy.TokensPerPeriod, Ms(_policy.ReplenishmentPeriod), now]),
                "concurrency" => await db.ScriptEvaluateAsync(ConcurrencyScript, [_key], [_policy.PermitLimit, now, leaseId, Ms(ConcurrencyLeaseTimeout)]),
                _ => await db.ScriptEvaluateAsync(FixedScript, [_key], [_policy.PermitLimit, Ms(_policy.Window)]),
            })!;
            if ((long)result[0] == 1)
            {
                if (leaseId is null)
                {
                    return new Lease(true, null, null);
                }
                Interlocked.Increment(ref _held);
                return new Lease(true, null, () => Release(db, leaseId));
            }
            return new Lease(false, TimeSpan.FromMilliseconds(Math.Max(1, (long)result[1])), null);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            _health.Failed(ex, _failOpen);
            return _failOpen ? new Lease(true, null, null) : new Lease(false, TimeSpan.FromSeconds(1), null);
        }
    }

    private void Release(IDatabase db, string leaseId)
    {
        Interlocked.Decrement(ref _held);
        // Fire and forget: if it is lost, the permit expires with ConcurrencyLeaseTimeout.
        _ = db.SortedSetRemoveAsync(_key, leaseId, CommandFlags.FireAndForget);
    }

    private static long Ms(TimeSpan span) => (long)Math.Ceiling(span.TotalMilliseconds);

    private sealed class Lease(bool acquired, TimeSpan? retryAfter, Action? release) : RateLimitLease
    {
        private Action? _release = release;

        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = retryAfter;
            return retryAfter is not null && metadataName == MetadataName.RetryAfter.Name;
        }

        protected override void Dispose(bool disposing) => Interlocked.Exchange(ref _release, null)?.Invoke();
    }
}

/// <summary>
/// How the gateway's Redis rate limiting fares: counts failures in
/// <c>fundament_gateway_ratelimit_redis_failures_total{outcome=allowed|refused}</c>, logs at most one
/// warning per 10 s. The <c>redis</c> health check raises the backend-down alert.
/// </summary>
internal sealed partial class RedisRateLimitHealth
{
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Counter<long> _failures;
    private long _lastLogged = long.MinValue;

    public RedisRateLimitHealth(TimeProvider time, ILogger<RedisRateLimitHealth> logger, IMeterFactory meters)
    {
        _time = time;
        _logger = logger;
        _failures = meters.Create("Fundament.Gateway").CreateCounter<long>("fundament.gateway.ratelimit.redis.failures", "{request}", "Rate-limit decisions Redis could not make; outcome says whether the request was let through.");
    }

    public void Failed(Exception exception, bool failOpen)
    {
        _failures.Add(1, new KeyValuePair<string, object?>("outcome", failOpen ? "allowed" : "refused"));
        var now = _time.GetTimestamp();
        var last = Interlocked.Read(ref _lastLogged);
        if ((last == long.MinValue || _time.GetElapsedTime(last, now) > TimeSpan.FromSeconds(10)) && Interlocked.CompareExchange(ref _lastLogged, now, last) == last)
        {
            LogFailed(_logger, failOpen ? "let through (fail open)" : "refused (fail closed)", exception);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Redis could not decide a rate limit; requests are {Outcome} until it answers again")]
    private static partial void LogFailed(ILogger logger, string outcome, Exception exception);
}
