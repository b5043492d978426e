using System.Globalization;
using System.Threading.RateLimiting;
using Fundament.Redis;
using Fundament.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Fundament.Gateway;

/// <summary>
/// The named policies of <c>Fundament:Gateway:RateLimits</c> as ASP.NET Core rate limiters, which
/// routes name in <c>rateLimit</c>. Limits are per process, or shared by every replica when
/// <c>Fundament:Redis</c> is configured (<see cref="RedisRateLimiter"/>). A refusal is a 429 problem with <c>Retry-After</c>,
/// <c>RateLimit-Policy</c> and <c>RateLimit</c> (IETF draft) headers.
/// </summary>
internal static class RateLimiting
{
    public static string? Problem(string name, RateLimitPolicyOptions p)
    {
        var key = $"{GatewayOptions.SectionName}:RateLimits:{name}";
        if (p.Algorithm is not ("fixed" or "sliding" or "tokenBucket" or "concurrency"))
        {
            return $"{key}:Algorithm must be fixed, sliding, tokenBucket or concurrency.";
        }
        if (p.PermitLimit < 1 || p.QueueLimit < 0 || p.Window <= TimeSpan.Zero || p.SegmentsPerWindow < 1 || p.TokensPerPeriod < 1 || p.ReplenishmentPeriod <= TimeSpan.Zero)
        {
            return $"{key}: PermitLimit, SegmentsPerWindow and TokensPerPeriod must be at least 1, QueueLimit not negative, Window and ReplenishmentPeriod positive.";
        }
        if (p.PartitionBy is not ("global" or "user" or "ip" or "apiKey") && !(p.PartitionBy.StartsWith("header:", StringComparison.Ordinal) && p.PartitionBy.Length > 7))
        {
            return $"{key}:PartitionBy must be global, user, ip, apiKey or header:<name>.";
        }
        return null;
    }

    public static IServiceCollection AddGatewayRateLimits(this IServiceCollection services)
    {
        services.AddRateLimiter(_ => { });
        services.AddSingleton<RedisRateLimitHealth>();
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<GatewayOptions>>((limiter, gateway) =>
        {
            foreach (var (name, policy) in gateway.Value.RateLimits)
            {
                limiter.AddPolicy(name, context => Partition(name, policy, context));
            }
            limiter.OnRejected = (context, cancellationToken) => RejectAsync(context, gateway.Value, cancellationToken);
        });
        return services;
    }

    private static RateLimitPartition<string> Partition(string name, RateLimitPolicyOptions p, HttpContext context)
    {
        var who = p.PartitionBy switch
        {
            "global" => "global",
            "ip" => context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
            "apiKey" => context.User.FindFirst(FundamentClaims.ApiKeyId)?.Value ?? "no-key",
            "user" => context.User.ActorId() ?? "anonymous:" + context.Connection.RemoteIpAddress,
            var header => "h:" + context.Request.Headers[header["header:".Length..]].ToString(),
        };
        var key = $"{name}|{who}";
        var redis = context.RequestServices.GetRequiredService<RedisConnection>();
        if (redis.Options.Enabled)
        {
            return RateLimitPartition.Get(key, k => new RedisRateLimiter(name, p, k, redis,
                context.RequestServices.GetRequiredService<RedisRateLimitHealth>(),
                context.RequestServices.GetRequiredService<IOptions<GatewayOptions>>().Value.RateLimitFailOpen,
                context.RequestServices.GetRequiredService<TimeProvider>()));
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

    private static async ValueTask RejectAsync(OnRejectedContext context, GatewayOptions gateway, CancellationToken cancellationToken)
    {
        var http = context.HttpContext;
        var policyName = http.GetEndpoint()?.Metadata.GetMetadata<EnableRateLimitingAttribute>()?.PolicyName
            ?? http.Features.Get<Yarp.ReverseProxy.Model.IReverseProxyFeature>()?.Route.Config.RateLimiterPolicy ?? "default";
        gateway.RateLimits.TryGetValue(policyName, out var policy);
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
