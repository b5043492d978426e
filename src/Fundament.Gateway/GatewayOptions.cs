using Fundament.Gateway.Policies;

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

    /// <summary>Retries per request for idempotent methods after a connection failure or a 502/503, each on another destination. Routes may set <c>retries</c>. Default 2.</summary>
    public int MaxRetries { get; set; } = 2;

    /// <summary>Retries may add at most this percentage to a service's requests over ten seconds. Default 20.</summary>
    public int RetryBudgetPercent { get; set; } = 20;

    /// <summary>Retries per second a service may always make, whatever its traffic. Default 10.</summary>
    public int RetryBudgetMinPerSecond { get; set; } = 10;

    /// <summary>Largest request body buffered so the request can be retried; larger bodies are sent once. Default 64 KiB.</summary>
    public long RetryBodyLimit { get; set; } = 64 * 1024;

    /// <summary>Named CORS policies routes refer to with <c>"cors":"&lt;name&gt;"</c>.</summary>
    public Dictionary<string, CorsPolicyOptions> Cors { get; set; } = new(StringComparer.Ordinal);

    /// <summary>With Redis configured: let requests through when Redis cannot decide (true, default) or refuse them with 429.</summary>
    public bool RateLimitFailOpen { get; set; } = true;

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

/// <summary>One CORS policy, section <c>Fundament:Gateway:Cors:&lt;name&gt;</c>.</summary>
public sealed class CorsPolicyOptions
{
    /// <summary>Origins allowed to call (<c>https://app.example.com</c>), or <c>*</c> for any. Required.</summary>
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>Methods allowed in cross-origin requests. Default GET, POST, PUT, PATCH, DELETE.</summary>
    public string[] AllowedMethods { get; set; } = ["GET", "POST", "PUT", "PATCH", "DELETE"];

    /// <summary>Request headers allowed. Default <c>Authorization</c>, <c>Content-Type</c>, <c>api-version</c>.</summary>
    public string[] AllowedHeaders { get; set; } = ["Authorization", "Content-Type", "api-version"];

    /// <summary>Response headers the browser may read. Default <c>X-Request-Id</c>, <c>Retry-After</c>.</summary>
    public string[] ExposedHeaders { get; set; } = ["X-Request-Id", "Retry-After"];

    /// <summary>Whether cookies and credentials may be sent (not with origin <c>*</c>). Default false.</summary>
    public bool AllowCredentials { get; set; }

    /// <summary>How long browsers may cache a preflight answer. Default 10 minutes.</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>Every setting of <c>Fundament:Gateway</c>, each problem naming its key.</summary>
internal sealed class GatewayOptionsValidator : SettingsValidator<GatewayOptions>
{
    protected override string Section => GatewayOptions.SectionName;

    protected override void Check(GatewayOptions o, SettingsProblems problems)
    {
        problems.Require(o.Ports().Count > 0, o.Urls, "must name at least one URL with a port.");
        problems.Require(o.DefaultTimeout > TimeSpan.Zero && o.DefaultTimeout <= TimeSpan.FromHours(1), o.DefaultTimeout, "must be between 0 and 01:00:00.");
        problems.Between(o.FailureThreshold, 1, 1000);
        problems.AtLeast(o.ReactivationPeriod, TimeSpan.FromSeconds(1));
        problems.Between(o.MaxRetries, 0, 5);
        problems.Between(o.RetryBudgetPercent, 0, 100);
        problems.Require(o.RetryBudgetMinPerSecond >= 0, o.RetryBudgetMinPerSecond, "must not be negative.");
        problems.Require(o.RetryBodyLimit is >= 0 and <= 16 << 20, o.RetryBodyLimit, "must be between 0 and 16 MiB.");
        foreach (var (policy, options) in o.RateLimits)
        {
            var key = $"{problems.Key(nameof(o) + "." + nameof(o.RateLimits))}:{policy}";
            if (!GatewayPolicyDefinitions.IsName(policy))
            {
                problems.AddSentence($"{key}: the name must be 1-64 letters, digits, '-', '_' or '.' (not 'default' or 'disable').");
            }
            foreach (var (field, message) in RateLimiting.Problems(options))
            {
                problems.AddSentence($"{key}:{Pascal(field)}: {message}");
            }
        }
        foreach (var (policy, options) in o.Cors)
        {
            var key = $"{problems.Key(nameof(o) + "." + nameof(o.Cors))}:{policy}";
            if (!GatewayPolicyDefinitions.IsName(policy))
            {
                problems.AddSentence($"{key}: the name must be 1-64 letters, digits, '-', '_' or '.' (not 'default' or 'disable').");
            }
            foreach (var (field, message) in GatewayPolicyDefinitions.CorsProblems(options))
            {
                problems.AddSentence($"{key}:{Pascal(field)}: {message}");
            }
        }
    }

    private static string Pascal(string field) => char.ToUpper(field[0], System.Globalization.CultureInfo.InvariantCulture) + field[1..];
}
