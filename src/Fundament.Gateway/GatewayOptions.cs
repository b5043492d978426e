namespace Fundament.Gateway;

/// <summary>Section <c>Fundament:Gateway</c>.</summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Fundament:Gateway";

    /// <summary>Where the gateway listens (semicolon-separated), apart from the API. Default <c>http://localhost:8080</c>.</summary>
    public string Urls { get; set; } = "http://localhost:8080";

    /// <summary>Default upstream timeout for routes that set none. Default 30s.</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Consecutive failures after which a destination is taken out (passive health). Default 5.</summary>
    public int FailureThreshold { get; set; } = 5;

    /// <summary>How long an ejected destination stays out. Default 30s.</summary>
    public TimeSpan ReactivationPeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Named rate-limit policies routes refer to with <c>"rateLimit":"&lt;name&gt;"</c>.</summary>
    public Dictionary<string, RateLimitPolicyOptions> RateLimits { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The ports of <see cref="Urls"/>; requests arriving on them go to the gateway.</summary>
    public IReadOnlySet<int> Ports() =>
        Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(u => Uri.TryCreate(u.Replace("://+", "://localhost", StringComparison.Ordinal).Replace("://*", "://localhost", StringComparison.Ordinal), UriKind.Absolute, out var uri) ? uri.Port : -1)
            .Where(p => p > 0)
            .ToHashSet();
}

/// <summary>One rate-limit policy, section <c>Fundament:Gateway:RateLimits:&lt;name&gt;</c>.</summary>
public sealed class RateLimitPolicyOptions
{
    /// <summary><c>fixed</c> (default), <c>sliding</c>, <c>tokenBucket</c> or <c>concurrency</c>.</summary>
    public string Algorithm { get; set; } = "fixed";

    /// <summary>Requests per window (fixed, sliding), bucket size (tokenBucket) or requests at once (concurrency). Default 100.</summary>
    public int PermitLimit { get; set; } = 100;

    /// <summary>Window length (fixed, sliding). Default 1 minute.</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Segments of a sliding window. Default 6.</summary>
    public int SegmentsPerWindow { get; set; } = 6;

    /// <summary>Tokens added per replenishment period (tokenBucket). Default 10.</summary>
    public int TokensPerPeriod { get; set; } = 10;

    /// <summary>Replenishment period (tokenBucket). Default 1 second.</summary>
    public TimeSpan ReplenishmentPeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Requests that wait for a permit instead of being refused. Default 0.</summary>
    public int QueueLimit { get; set; }

    /// <summary>Who shares a limit: <c>global</c>, <c>user</c> (default), <c>ip</c>, <c>apiKey</c> or <c>header:&lt;name&gt;</c>.</summary>
    public string PartitionBy { get; set; } = "user";
}
