using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Threading.RateLimiting;
using Fundament.Core.Redis;
using Fundament.Gateway.Policies;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;
using Yarp.ReverseProxy.Model;

namespace Fundament.Gateway;

/// <summary>
/// Rate limits by route: a route names a policy (<c>rateLimit</c>) from the
/// <see cref="GatewayPolicyCatalog"/>, and one global limiter partitions every request by that
/// policy (and its version, so a changed policy starts fresh counts) and by who asks. Limits are
/// per process, or shared by every replica when <c>Fundament:Redis</c> is configured
/// (<see cref="RedisRateLimiter"/>). A refusal is a 429 problem with <c>Retry-After</c>,
/// <c>RateLimit-Policy</c> and <c>RateLimit</c> (IETF draft) headers.
/// </summary>
internal static class RateLimiting
{
    /// <summary>Route metadata naming the route's rate-limit policy.</summary>
    public const string PolicyMetadata = "fundament.rateLimit";

    private static readonly RateLimitPartition<string> Unlimited = RateLimitPartition.GetNoLimiter("");

    /// <summary>Problems of a policy as (camelCase field, message).</summary>
    public static IEnumerable<(string Field, string Message)> Problems(RateLimitPolicyOptions p)
    {
        if (p.Algorithm is not ("fixed" or "sliding" or "tokenBucket" or "concurrency"))
        {
            yield return ("algorithm", "algorithm must be fixed, sliding, tokenBucket or concurrency.");
        }
        if (p.PermitLimit is < 1 or > 1_000_000_000)
        {
            yield return ("permitLimit", "permitLimit must be at least 1.");
        }
        if (p.QueueLimit is < 0 or > 100_000)
        {
            yield return ("queueLimit", "queueLimit must be between 0 and 100000.");
        }
        if (p.Window <= TimeSpan.Zero)
        {
            yield return ("window", "window must be positive.");
        }
        if (p.SegmentsPerWindow is < 1 or > 1000)
        {
            yield return ("segmentsPerWindow", "segmentsPerWindow must be between 1 and 1000.");
        }
        if (p.TokensPerPeriod < 1)
        {
            yield return ("tokensPerPeriod", "tokensPerPeriod must be at least 1.");
        }
        if (p.ReplenishmentPeriod <= TimeSpan.Zero)
        {
            yield return ("replenishmentPeriod", "replenishmentPeriod must be positive.");
        }
        if (p.PartitionBy is not ("global" or "user" or "ip" or "apiKey") && !(p.PartitionBy.StartsWith("header:", StringComparison.Ordinal) && p.PartitionBy.Length is > 7 and <= 135))
        {
            yield return ("partitionBy", "partitionBy must be global, user, ip, apiKey or header:<name>.");
        }
    }

    public static IServiceCollection AddGatewayRateLimits(this IServiceCollection services)
    {
        services.AddRateLimiter(_ => { });
        services.AddSingleton<RedisRateLimitHealth>();
        services.AddOptions<RateLimiterOptions>().Configure<GatewayPolicyCatalog, IOptions<GatewayOptions>, RedisConnection, RedisRateLimitHealth, TimeProvider>(
            (limiter, catalog, gateway, redis, health, time) =>
            {
                var failOpen = gateway.Value.RateLimitFailOpen;
                limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context => Partition(context, catalog, redis, health, failOpen, time));
                limiter.OnRejected = (context, cancellationToken) => RejectAsync(context, catalog, cancellationToken);
            });
        return services;
    }

    /// <summary>The policy the matched route names, if any.</summary>
    public static string? PolicyOf(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.Metadata is { } metadata && metadata.TryGetValue(PolicyMetadata, out var name) ? name : null;

    private static RateLimitPartition<string> Partition(HttpContext context, GatewayPolicyCatalog catalog, RedisConnection redis, RedisRateLimitHealth health, bool failOpen, TimeProvider time)
    {
        if (PolicyOf(context) is not { } name)
        {
            return Unlimited;
        }
        if (!catalog.Current.RateLimits.TryGetValue(name, out var entry))
        {
            // The route names a policy this node does not have: refuse rather than serve it unlimited.
            return RateLimitPartition.Get("missing:" + name, _ => RefusingLimiter.Instance);
        }
        var p = entry.Options;
        var who = p.PartitionBy switch
        {
            "global" => "global",
            "ip" => context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
            "apiKey" => context.User.FindFirst(FundamentClaims.ApiKeyId)?.Value ?? "no-key",
            "user" => context.User.ActorId() ?? "anonymous:" + context.Connection.RemoteIpAddress,
            // The caller chooses this value: hashed, so a long or hostile value costs a fixed-size key.
            var header => "h:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(context.Request.Headers[header["header:".Length..]].ToString())), 0, 16),
        };
        var key = $"{name}@{entry.Version.ToString(CultureInfo.InvariantCulture)}|{who}";
        if (redis.Options.Enabled)
        {
            return RateLimitPartition.Get(key, k => new RedisRateLimiter(name, p, k, redis, health, failOpen, time));
        }
        return p.Algorithm switch
        {
            "sliding" => RateLimitPartition.GetSlidingWindowLimiter(key, _ => new SlidingWindowRateLimiterOptions
            {
                PermitLimit = p.PermitLimit, Window = p.Window, SegmentsPerWindow = p.SegmentsPerWindow, QueueLimit = p.QueueLimit,
            }),
            "tokenBucket" => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = p.PermitLimit, TokensPerPeriod = p.TokensPerPeriod, ReplenishmentPeriod = p.ReplenishmentPeriod, QueueLimit = p.QueueLimit,
            }),
            "concurrency" => RateLimitPartition.GetConcurrencyLimiter(key, _ => new ConcurrencyLimiterOptions { PermitLimit = p.PermitLimit, QueueLimit = p.QueueLimit }),
            _ => RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions { PermitLimit = p.PermitLimit, Window = p.Window, QueueLimit = p.QueueLimit }),
        };
    }

    private static async ValueTask RejectAsync(OnRejectedContext context, GatewayPolicyCatalog catalog, CancellationToken cancellationToken)
    {
        var http = context.HttpContext;
        var policyName = PolicyOf(http) ?? "default";
        var policy = catalog.Current.RateLimits.TryGetValue(policyName, out var entry) ? entry.Options : null;
        var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after
            : policy?.Algorithm is "fixed" or "sliding" ? policy.Window : TimeSpan.FromSeconds(1);
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        http.Response.Headers.RetryAfter = seconds;
        if (policy is not null)
        {
            http.Response.Headers["RateLimit-Policy"] = $"\"{policyName}\";q={policy.PermitLimit};w={(int)policy.Window.TotalSeconds}";
            http.Response.Headers["RateLimit"] = $"\"{policyName}\";r=0;t={seconds}";
        }
        var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = new ProblemDetails
            {
                Status = 429,
                Title = "Too many requests",
                Detail = $"Rate limit '{policyName}' reached; retry in {seconds} s.",
            },
        });
    }
}

/// <summary>Refuses every request: what a route gets when its policy is missing on this node.</summary>
internal sealed class RefusingLimiter : RateLimiter
{
    public static readonly RefusingLimiter Instance = new();

    private static readonly RateLimitLease Refused = new RefusedLease();

    public override TimeSpan? IdleDuration => null;

    public override RateLimiterStatistics? GetStatistics() => null;

    protected override RateLimitLease AttemptAcquireCore(int permitCount) => Refused;

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) => ValueTask.FromResult(Refused);

    private sealed class RefusedLease : RateLimitLease
    {
        public override bool IsAcquired => false;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }
}
