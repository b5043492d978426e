namespace Fundament.Gateway.Policies;

/// <summary>
/// Body of <c>PUT /api/v1/gateway/policies/rate-limit/{name}</c>. Every field is optional; the
/// defaults are those of <see cref="RateLimitPolicyOptions"/>.
/// </summary>
/// <param name="Algorithm"><c>fixed</c> (default), <c>sliding</c>, <c>tokenBucket</c> or <c>concurrency</c>.</param>
/// <param name="PermitLimit">Requests per window, bucket size, or requests at once. Default 100.</param>
/// <param name="Window">Window of fixed and sliding limits, a duration such as <c>1m</c>. Default 1m.</param>
/// <param name="SegmentsPerWindow">Segments of a sliding window. Default 6.</param>
/// <param name="TokensPerPeriod">Tokens added per period (tokenBucket). Default 10.</param>
/// <param name="ReplenishmentPeriod">Period of a token bucket, e.g. <c>1s</c>. Default 1s.</param>
/// <param name="QueueLimit">Requests that wait instead of being refused (in-process limits only). Default 0.</param>
/// <param name="PartitionBy"><c>global</c>, <c>user</c> (default), <c>ip</c>, <c>apiKey</c> or <c>header:&lt;name&gt;</c>.</param>
public sealed record RateLimitPolicyBody(
    string? Algorithm,
    int? PermitLimit,
    string? Window,
    int? SegmentsPerWindow,
    int? TokensPerPeriod,
    string? ReplenishmentPeriod,
    int? QueueLimit,
    string? PartitionBy);

/// <summary>Body of <c>PUT /api/v1/gateway/policies/cors/{name}</c>; the defaults are those of <see cref="CorsPolicyOptions"/>.</summary>
/// <param name="AllowedOrigins">Required: origins such as <c>https://app.example.com</c>, or <c>*</c>.</param>
/// <param name="MaxAge">How long browsers may cache a preflight, e.g. <c>10m</c>. Default 10m.</param>
public sealed record CorsPolicyBody(
    IReadOnlyList<string>? AllowedOrigins,
    IReadOnlyList<string>? AllowedMethods,
    IReadOnlyList<string>? AllowedHeaders,
    IReadOnlyList<string>? ExposedHeaders,
    bool? AllowCredentials,
    string? MaxAge);

/// <summary>A gateway policy routes refer to by name.</summary>
/// <param name="Kind"><c>rate-limit</c> or <c>cors</c>.</param>
/// <param name="Source"><c>config</c> (a read-only seed from <c>Fundament:Gateway</c>) or <c>api</c>.</param>
/// <param name="Version">Grows with every change; 0 for seeds.</param>
public sealed record GatewayPolicyResponse(
    string Kind,
    string Name,
    string Source,
    long Version,
    string? UpdatedBy,
    DateTimeOffset? UpdatedAt,
    RateLimitPolicyBody? RateLimit,
    CorsPolicyBody? Cors);

public static class GatewayPolicyKinds
{
    public const string RateLimit = "rate-limit";
    public const string Cors = "cors";

    public static bool IsValid(string kind) => kind is RateLimit or Cors;
}

public static class GatewayPermissions
{
    /// <summary>Read gateway policies.</summary>
    public const string Read = "gateway.read";

    /// <summary>Create, change and delete gateway policies.</summary>
    public const string Write = "gateway.write";
}
