namespace Fundament.Gateway.Policies;

/// <summary>Converts policy bodies to options and back, validating each field by its name.</summary>
internal static class GatewayPolicyDefinitions
{
    /// <summary>YARP gives these two names a meaning of its own.</summary>
    private static readonly string[] ReservedNames = ["default", "disable"];

    public static bool IsName(string name) =>
        name.Length is > 0 and <= 64 && char.IsAsciiLetterOrDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
        && !ReservedNames.Contains(name, StringComparer.OrdinalIgnoreCase);

    public static RateLimitPolicyOptions? ToOptions(RateLimitPolicyBody body, ValidationErrors errors)
    {
        var defaults = new RateLimitPolicyOptions();
        var options = new RateLimitPolicyOptions
        {
            Algorithm = body.Algorithm ?? defaults.Algorithm,
            PermitLimit = body.PermitLimit ?? defaults.PermitLimit,
            Window = Duration(body.Window, "window", defaults.Window, errors),
            SegmentsPerWindow = body.SegmentsPerWindow ?? defaults.SegmentsPerWindow,
            TokensPerPeriod = body.TokensPerPeriod ?? defaults.TokensPerPeriod,
            ReplenishmentPeriod = Duration(body.ReplenishmentPeriod, "replenishmentPeriod", defaults.ReplenishmentPeriod, errors),
            QueueLimit = body.QueueLimit ?? defaults.QueueLimit,
            PartitionBy = body.PartitionBy ?? defaults.PartitionBy,
        };
        foreach (var (field, message) in RateLimiting.Problems(options))
        {
            errors.Add(field, message);
        }
        return errors.Any ? null : options;
    }

    public static RateLimitPolicyBody ToBody(RateLimitPolicyOptions o) =>
        new(o.Algorithm, o.PermitLimit, Durations.Format(o.Window), o.SegmentsPerWindow, o.TokensPerPeriod, Durations.Format(o.ReplenishmentPeriod), o.QueueLimit, o.PartitionBy);

    public static CorsPolicyOptions? ToOptions(CorsPolicyBody body, ValidationErrors errors)
    {
        foreach (var (field, list) in new[] { ("allowedOrigins", body.AllowedOrigins), ("allowedMethods", body.AllowedMethods), ("allowedHeaders", body.AllowedHeaders), ("exposedHeaders", body.ExposedHeaders) })
        {
            if (list?.Any(item => item is null) == true)
            {
                errors.Add(field, $"{field} may not contain null.");
            }
        }
        if (errors.Any)
        {
            return null;
        }
        var defaults = new CorsPolicyOptions();
        var options = new CorsPolicyOptions
        {
            AllowedOrigins = [.. body.AllowedOrigins ?? []],
            AllowedMethods = [.. body.AllowedMethods ?? defaults.AllowedMethods],
            AllowedHeaders = [.. body.AllowedHeaders ?? defaults.AllowedHeaders],
            ExposedHeaders = [.. body.ExposedHeaders ?? defaults.ExposedHeaders],
            AllowCredentials = body.AllowCredentials ?? defaults.AllowCredentials,
            MaxAge = Duration(body.MaxAge, "maxAge", defaults.MaxAge, errors),
        };
        foreach (var (field, message) in CorsProblems(options))
        {
            errors.Add(field, message);
        }
        return errors.Any ? null : options;
    }

    public static CorsPolicyBody ToBody(CorsPolicyOptions o) =>
        new(o.AllowedOrigins, o.AllowedMethods, o.AllowedHeaders, o.ExposedHeaders, o.AllowCredentials, Durations.Format(o.MaxAge));

    /// <summary>Problems of a CORS policy as (field, message), with the API's camelCase field names.</summary>
    public static IEnumerable<(string Field, string Message)> CorsProblems(CorsPolicyOptions o)
    {
        if (o.AllowedOrigins.Length is 0 or > 100)
        {
            yield return ("allowedOrigins", "allowedOrigins lists 1 to 100 origins (https://app.example.com) or *.");
        }
        else if (o.AllowedOrigins.Any(origin => origin != "*" && !(Uri.TryCreate(origin, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.AbsolutePath == "/" && !origin.EndsWith('/'))))
        {
            yield return ("allowedOrigins", "each origin is * or scheme://host[:port] without a path, such as https://app.example.com.");
        }
        if (o.AllowCredentials && o.AllowedOrigins.Contains("*"))
        {
            yield return ("allowCredentials", "allowCredentials cannot be combined with origin *.");
        }
        if (o.AllowedMethods.Length > 20 || o.AllowedMethods.Any(m => m.Length is 0 or > 20 || !m.All(char.IsAsciiLetterUpper)))
        {
            yield return ("allowedMethods", "allowedMethods lists at most 20 upper-case methods such as GET.");
        }
        if (o.AllowedHeaders.Length > 50 || o.ExposedHeaders.Length > 50 || o.AllowedHeaders.Concat(o.ExposedHeaders).Any(h => h.Length is 0 or > 128 || h.Any(c => c is '\r' or '\n' or ',' or ' ')))
        {
            yield return ("allowedHeaders", "allowedHeaders and exposedHeaders list at most 50 header names each.");
        }
        if (o.MaxAge < TimeSpan.Zero || o.MaxAge > TimeSpan.FromDays(1))
        {
            yield return ("maxAge", "maxAge must be between 0s and 1d.");
        }
    }

    private static TimeSpan Duration(string? text, string field, TimeSpan fallback, ValidationErrors errors)
    {
        if (text is null)
        {
            return fallback;
        }
        if (!Durations.TryParse(text, out var value) || value > TimeSpan.FromDays(1))
        {
            errors.Add(field, $"{field} must be a duration such as 10s or 1m, at most 1d.");
            return fallback;
        }
        return value;
    }
}
