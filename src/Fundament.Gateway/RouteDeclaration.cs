using System.Text.Json;
using Fundament.Hosting;
using Microsoft.AspNetCore.Routing.Patterns;
using Yarp.ReverseProxy.LoadBalancing;

namespace Fundament.Gateway;

/// <summary>
/// One entry of an instance's <c>routes</c>, as registered:
/// <code>
/// {"path":"/orders/{**rest}", "stripPrefix":"/orders", "pathPrefix":"/api",
///  "auth":"anonymous"|"authenticated"|"role:&lt;name&gt;", "rateLimit":"&lt;policy&gt;", "cors":"&lt;policy&gt;",
///  "timeout":"30s", "loadBalancing":"powerOfTwo"|"roundRobin"|"leastRequests", "retries":2,
///  "maxBodySize":1048576, "requestHeaders":{"X-Tenant":"acme","X-Debug":null}, "responseHeaders":{...}}
/// </code>
/// </summary>
internal sealed record RouteDeclaration(
    string Path,
    string? Auth,
    string? StripPrefix,
    string? PathPrefix,
    TimeSpan? Timeout,
    string? RateLimit,
    string? Cors,
    string LoadBalancing,
    int? Retries,
    long? MaxBodySize,
    IReadOnlyDictionary<string, string?> RequestHeaders,
    IReadOnlyDictionary<string, string?> ResponseHeaders)
{
    public static readonly IReadOnlyDictionary<string, string> LoadBalancingNames = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["powerOfTwo"] = LoadBalancingPolicies.PowerOfTwoChoices,
        [LoadBalancingPolicies.PowerOfTwoChoices] = LoadBalancingPolicies.PowerOfTwoChoices,
        ["roundRobin"] = LoadBalancingPolicies.RoundRobin,
        ["leastRequests"] = LoadBalancingPolicies.LeastRequests,
    };

    /// <summary>Parses one route; returns null and a reason when it cannot be served as declared.</summary>
    public static RouteDeclaration? Parse(JsonElement route, GatewayOptions options, out string? problem)
    {
        problem = null;
        if (route.ValueKind != JsonValueKind.Object)
        {
            problem = "a route must be an object";
            return null;
        }
        var path = String(route, "path");
        if (path is null || !path.StartsWith('/') || !ValidTemplate(path))
        {
            problem = "path must be a route template starting with /";
            return null;
        }
        var auth = String(route, "auth");
        if (auth is not (null or "anonymous" or "authenticated") && !(auth.StartsWith(RolePolicyProvider.Prefix, StringComparison.Ordinal) && auth.Length > RolePolicyProvider.Prefix.Length))
        {
            problem = "auth must be anonymous, authenticated or role:<name>";
            return null;
        }
        TimeSpan? timeout = null;
        if (String(route, "timeout") is { } t)
        {
            if (!Durations.TryParse(t, out var parsed) || parsed <= TimeSpan.Zero || parsed > TimeSpan.FromHours(1))
            {
                problem = "timeout must be a duration like 30s, at most 1h";
                return null;
            }
            timeout = parsed;
        }
        var rateLimit = String(route, "rateLimit");
        if (rateLimit is not null && !options.RateLimits.ContainsKey(rateLimit))
        {
            problem = $"rateLimit names policy '{rateLimit}', which is not configured";
            return null;
        }
        var cors = String(route, "cors");
        if (cors is not null && !options.Cors.ContainsKey(cors))
        {
            problem = $"cors names policy '{cors}', which is not configured";
            return null;
        }
        var balancing = LoadBalancingPolicies.PowerOfTwoChoices;
        if (String(route, "loadBalancing") is { } lb && !LoadBalancingNames.TryGetValue(lb, out balancing!))
        {
            problem = "loadBalancing must be powerOfTwo, roundRobin or leastRequests";
            return null;
        }
        int? retries = null;
        if (route.TryGetProperty("retries", out var r))
        {
            if (r.ValueKind != JsonValueKind.Number || !r.TryGetInt32(out var n) || n is < 0 or > 5)
            {
                problem = "retries must be a number from 0 to 5";
                return null;
            }
            retries = n;
        }
        long? maxBody = null;
        if (route.TryGetProperty("maxBodySize", out var m))
        {
            if (m.ValueKind != JsonValueKind.Number || !m.TryGetInt64(out var bytes) || bytes < 0)
            {
                problem = "maxBodySize must be a number of bytes";
                return null;
            }
            maxBody = bytes;
        }
        var strip = String(route, "stripPrefix");
        var prefix = String(route, "pathPrefix");
        if ((strip is not null && !strip.StartsWith('/')) || (prefix is not null && !prefix.StartsWith('/')))
        {
            problem = "stripPrefix and pathPrefix must start with /";
            return null;
        }
        if (!Headers(route, "requestHeaders", out var requestHeaders, out problem) || !Headers(route, "responseHeaders", out var responseHeaders, out problem))
        {
            return null;
        }
        return new RouteDeclaration(path, auth, strip, prefix, timeout, rateLimit, cors, balancing, retries, maxBody, requestHeaders, responseHeaders);
    }

    /// <summary>The YARP transforms this route asks for, in order: strip, prefix, then headers.</summary>
    public List<IReadOnlyDictionary<string, string>> Transforms(string? versionPrefix)
    {
        var transforms = new List<IReadOnlyDictionary<string, string>>();
        if (versionPrefix is not null)
        {
            transforms.Add(new Dictionary<string, string> { ["PathRemovePrefix"] = versionPrefix });
        }
        if (StripPrefix is { Length: > 1 })
        {
            transforms.Add(new Dictionary<string, string> { ["PathRemovePrefix"] = StripPrefix });
        }
        if (PathPrefix is { Length: > 1 })
        {
            transforms.Add(new Dictionary<string, string> { ["PathPrefix"] = PathPrefix });
        }
        foreach (var (name, value) in RequestHeaders)
        {
            transforms.Add(value is null
                ? new Dictionary<string, string> { ["RequestHeaderRemove"] = name }
                : new Dictionary<string, string> { ["RequestHeader"] = name, ["Set"] = value });
        }
        foreach (var (name, value) in ResponseHeaders)
        {
            transforms.Add(value is null
                ? new Dictionary<string, string> { ["ResponseHeaderRemove"] = name, ["When"] = "Always" }
                : new Dictionary<string, string> { ["ResponseHeader"] = name, ["Set"] = value, ["When"] = "Always" });
        }
        return transforms;
    }

    private static string? String(JsonElement route, string name) =>
        route.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static bool Headers(JsonElement route, string name, out IReadOnlyDictionary<string, string?> headers, out string? problem)
    {
        var found = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        headers = found;
        problem = null;
        if (!route.TryGetProperty(name, out var element))
        {
            return true;
        }
        if (element.ValueKind != JsonValueKind.Object)
        {
            problem = $"{name} must be an object of header names to values (null removes)";
            return false;
        }
        foreach (var header in element.EnumerateObject())
        {
            if (!IsToken(header.Name) || header.Name.StartsWith(IdentityHeadersTransform.Prefix, StringComparison.OrdinalIgnoreCase))
            {
                problem = $"{name}: '{header.Name}' is not a header this route may set (X-Fundament-* belongs to the gateway)";
                return false;
            }
            if (header.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null) || header.Value.GetString() is { } v && v.Any(c => c is '\r' or '\n' or '\0'))
            {
                problem = $"{name}: the value of '{header.Name}' must be a string without line breaks, or null";
                return false;
            }
            found[header.Name] = header.Value.GetString();
        }
        return true;
    }

    private static bool IsToken(string name) =>
        name.Length is > 0 and <= 128 && name.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal));

    private static bool ValidTemplate(string path)
    {
        try
        {
            RoutePatternFactory.Parse(path);
            return true;
        }
        catch (RoutePatternException)
        {
            return false;
        }
    }
}
