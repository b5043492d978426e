using System.Text.Json;
using Microsoft.AspNetCore.Routing.Patterns;

namespace Fundament.Registry.Routes;

/// <summary>What the gateway does with the caller's <c>Authorization</c> header on a route.</summary>
public enum ForwardAuthorization
{
    /// <summary>Default: the header is replaced by a short-lived token for audience <c>service:&lt;name&gt;</c>.</summary>
    Exchange,

    /// <summary>The header is removed; the upstream learns the caller only from <c>X-Fundament-*</c> headers.</summary>
    None,

    /// <summary>The caller's bearer token goes to the upstream as is (explicit opt-in, audited). API keys never do.</summary>
    Passthrough,
}

/// <summary>
/// One entry of an instance's <c>routes</c>, the schema the registry validates at registration and
/// the gateway serves:
/// <code>
/// {"path":"/orders/{**rest}", "stripPrefix":"/orders", "pathPrefix":"/api",
///  "auth":"anonymous"|"authenticated"|"role:&lt;name&gt;", "rateLimit":"&lt;policy&gt;", "cors":"&lt;policy&gt;",
///  "timeout":"30s", "loadBalancing":"powerOfTwo"|"roundRobin"|"leastRequests", "retries":2,
///  "maxBodySize":1048576, "requestHeaders":{"X-Tenant":"acme","X-Debug":null}, "responseHeaders":{...},
///  "forwardAuthorization":"exchange"|"none"|"passthrough"}
/// </code>
/// </summary>
public sealed record RouteDeclaration(
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
    IReadOnlyDictionary<string, string?> ResponseHeaders,
    ForwardAuthorization ForwardAuthorization)
{
    public const int MaxRoutes = 32;

    /// <summary>Prefix of the per-role authorization policies (<c>role:&lt;name&gt;</c>).</summary>
    public const string RolePrefix = "role:";

    /// <summary>Headers that belong to the gateway: routes may neither set nor remove them.</summary>
    public const string GatewayHeaderPrefix = "X-Fundament-";

    public static IReadOnlyList<string> LoadBalancingPolicies { get; } = ["powerOfTwo", "roundRobin", "leastRequests"];

    private static readonly HashSet<string> Fields = new(StringComparer.Ordinal)
    {
        "path", "auth", "stripPrefix", "pathPrefix", "timeout", "rateLimit", "cors", "loadBalancing", "retries", "maxBodySize",
        "requestHeaders", "responseHeaders", "forwardAuthorization",
    };

    /// <summary>
    /// Parses an instance's <c>routes</c> array. Every problem is added to <paramref name="problems"/>
    /// as (field, message), fields named like <c>routes[1].timeout</c>; a route with any problem is
    /// left out of the result. <paramref name="strict"/> (registration) also refuses unknown fields;
    /// the gateway reads leniently what was stored before a field existed.
    /// </summary>
    public static IReadOnlyList<RouteDeclaration> ParseAll(JsonElement routes, ICollection<(string Field, string Message)> problems, bool strict) =>
        ParseEach(routes, problems, strict).Where(r => r.Clean).Select(r => r.Route).ToList();

    /// <summary>
    /// The one parser of a <c>routes</c> array, for the registry (which checks every route further,
    /// so that one answer lists every problem) and the gateway (through <see cref="ParseAll"/>).
    /// Each route object comes back with its field name and whether it parsed without a problem.
    /// </summary>
    public static IReadOnlyList<(RouteDeclaration Route, string Field, bool Clean)> ParseEach(
        JsonElement routes, ICollection<(string Field, string Message)> problems, bool strict)
    {
        var parsed = new List<(RouteDeclaration, string, bool)>();
        if (routes.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return parsed;
        }
        if (routes.ValueKind != JsonValueKind.Array || routes.GetArrayLength() > MaxRoutes)
        {
            problems.Add(("routes", $"routes must be an array of at most {MaxRoutes} route objects."));
            return parsed;
        }
        var i = 0;
        foreach (var element in routes.EnumerateArray())
        {
            var field = $"routes[{i++}]";
            var before = problems.Count;
            if (Parse(element, field, problems, strict) is { } route)
            {
                parsed.Add((route, field, problems.Count == before));
            }
        }
        return parsed;
    }

    /// <summary>
    /// Parses one route, adding each problem to <paramref name="problems"/> under <paramref name="field"/>.
    /// Null only when the route is not an object; otherwise the fields that parsed (a bad field
    /// keeps its default), so further checks can still report on them. Serve it only when no
    /// problem was added.
    /// </summary>
    public static RouteDeclaration? Parse(JsonElement route, string field, ICollection<(string Field, string Message)> problems, bool strict)
    {
        void Problem(string name, string message) => problems.Add(($"{field}.{name}", message));
        if (route.ValueKind != JsonValueKind.Object)
        {
            problems.Add((field, "a route must be an object with a path."));
            return null;
        }
        if (strict)
        {
            foreach (var property in route.EnumerateObject().Where(p => !Fields.Contains(p.Name)))
            {
                Problem(property.Name, $"unknown field; a route has {string.Join(", ", Fields)}.");
            }
        }
        var path = String(route, "path", Problem);
        if (path is null || !path.StartsWith('/') || path.Length > 512)
        {
            Problem("path", "path is required: a route template starting with /, such as /orders/{**rest}.");
        }
        else if (TemplateProblem(path) is { } templateProblem)
        {
            Problem("path", templateProblem);
        }
        var auth = String(route, "auth", Problem);
        if (auth is not (null or "anonymous" or "authenticated") && !(auth.StartsWith(RolePrefix, StringComparison.Ordinal) && auth.Length is > 5 and <= 69))
        {
            Problem("auth", "auth must be anonymous, authenticated or role:<name>.");
        }
        TimeSpan? timeout = null;
        if (String(route, "timeout", Problem) is { } t)
        {
            if (!Durations.TryParse(t, out var parsed) || parsed <= TimeSpan.Zero || parsed > TimeSpan.FromHours(1))
            {
                Problem("timeout", "timeout must be a duration such as 30s, at most 1h.");
            }
            else
            {
                timeout = parsed;
            }
        }
        var rateLimit = Name(route, "rateLimit", Problem);
        var cors = Name(route, "cors", Problem);
        var balancing = "powerOfTwo";
        if (String(route, "loadBalancing", Problem) is { } lb)
        {
            if (LoadBalancingPolicies.FirstOrDefault(p => p.Equals(lb, StringComparison.OrdinalIgnoreCase)) is { } known)
            {
                balancing = known;
            }
            else
            {
                Problem("loadBalancing", "loadBalancing must be powerOfTwo, roundRobin or leastRequests.");
            }
        }
        int? retries = null;
        if (route.TryGetProperty("retries", out var r))
        {
            if (r.ValueKind != JsonValueKind.Number || !r.TryGetInt32(out var n) || n is < 0 or > 5)
            {
                Problem("retries", "retries must be a number from 0 to 5.");
            }
            else
            {
                retries = n;
            }
        }
        long? maxBody = null;
        if (route.TryGetProperty("maxBodySize", out var m))
        {
            if (m.ValueKind != JsonValueKind.Number || !m.TryGetInt64(out var bytes) || bytes < 0)
            {
                Problem("maxBodySize", "maxBodySize must be a number of bytes.");
            }
            else
            {
                maxBody = bytes;
            }
        }
        var strip = String(route, "stripPrefix", Problem);
        if (strip is not null && (!strip.StartsWith('/') || strip.Length > 256))
        {
            Problem("stripPrefix", "stripPrefix must start with /.");
        }
        var prefix = String(route, "pathPrefix", Problem);
        if (prefix is not null && (!prefix.StartsWith('/') || prefix.Length > 256))
        {
            Problem("pathPrefix", "pathPrefix must start with /.");
        }
        var requestHeaders = Headers(route, "requestHeaders", Problem);
        var responseHeaders = Headers(route, "responseHeaders", Problem);
        var forward = ForwardAuthorization.Exchange;
        if (String(route, "forwardAuthorization", Problem) is { } f)
        {
            if (!Enum.TryParse(f, ignoreCase: true, out forward) || !Enum.IsDefined(forward) || f.Any(char.IsDigit))
            {
                Problem("forwardAuthorization", "forwardAuthorization must be exchange (default), none or passthrough.");
            }
        }
        return new RouteDeclaration(path ?? "", auth, strip, prefix, timeout, rateLimit, cors, balancing, retries, maxBody, requestHeaders, responseHeaders, forward);
    }

    /// <summary>The raw path of each route that has one, for the claim check (which runs even when other fields are wrong).</summary>
    public static IEnumerable<string> Paths(JsonElement routes) =>
        routes.ValueKind != JsonValueKind.Array
            ? []
            : routes.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("path", out var p) && p.ValueKind == JsonValueKind.String)
                .Select(e => e.GetProperty("path").GetString()!)
                .Where(p => p.StartsWith('/'));

    private static string? String(JsonElement route, string name, Action<string, string> problem)
    {
        if (!route.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            problem(name, $"{name} must be a string.");
            return null;
        }
        return value.GetString();
    }

    private static string? Name(JsonElement route, string name, Action<string, string> problem)
    {
        var value = String(route, name, problem);
        if (value is not null && (value.Length is 0 or > 64 || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            problem(name, $"{name} must name a policy (1-64 letters, digits, '-', '_', '.').");
            return null;
        }
        return value;
    }

    private static Dictionary<string, string?> Headers(JsonElement route, string name, Action<string, string> problem)
    {
        var found = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (!route.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return found;
        }
        if (element.ValueKind != JsonValueKind.Object)
        {
            problem(name, $"{name} must be an object of header names to values (null removes).");
            return found;
        }
        foreach (var header in element.EnumerateObject())
        {
            if (!IsToken(header.Name))
            {
                problem(name, $"'{header.Name}' is not a valid header name.");
            }
            else if (header.Name.StartsWith(GatewayHeaderPrefix, StringComparison.OrdinalIgnoreCase))
            {
                problem(name, $"'{header.Name}' belongs to the gateway (X-Fundament-*); a route may not set or remove it.");
            }
            else if (header.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Null) || header.Value.GetString() is { } v && (v.Length > 1024 || v.Any(c => c is '\r' or '\n' or '\0')))
            {
                problem(name, $"the value of '{header.Name}' must be a string of at most 1024 characters without line breaks, or null.");
            }
            else
            {
                found[header.Name] = header.Value.GetString();
            }
        }
        if (found.Count > 32)
        {
            problem(name, $"{name} sets at most 32 headers.");
        }
        return found;
    }

    private static bool IsToken(string name) =>
        name.Length is > 0 and <= 128 && name.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal));

    /// <summary>Constraints a route may use: cheap, with arguments checked here, so none can fail when the gateway builds its matcher (an unknown one would break every route) or burn CPU per request (regex).</summary>
    public static IReadOnlyList<string> AllowedConstraints { get; } =
        ["int", "long", "bool", "guid", "alpha", "decimal", "double", "float", "datetime", "length", "minlength", "maxlength", "min", "max", "range"];

    /// <summary>Why a template cannot be served, or null. Parsed by ASP.NET Core's own route parser.</summary>
    public static string? TemplateProblem(string path)
    {
        RoutePattern pattern;
        try
        {
            pattern = RoutePatternFactory.Parse(path);
        }
        catch (RoutePatternException ex)
        {
            return $"path is not a valid route template: {ex.Message}";
        }
        foreach (var segment in pattern.PathSegments)
        {
            foreach (var part in segment.Parts)
            {
                if (part is RoutePatternLiteralPart literal && !RoutePaths.IsPlainLiteral(literal.Content) && !(segment.Parts.Count > 1 && literal.Content.All(c => c is '.' or '-' or '_' or '~')))
                {
                    return $"path segment '{literal.Content}' may not contain %, \\, braces or wildcards, or be . or ..";
                }
                if (part is RoutePatternParameterPart parameter)
                {
                    if (parameter.Default is not null)
                    {
                        return $"parameter '{parameter.Name}' may not have a default value.";
                    }
                    foreach (var policy in parameter.ParameterPolicies)
                    {
                        if (ConstraintProblem(policy.Content) is { } problem)
                        {
                            return $"parameter '{parameter.Name}': {problem}";
                        }
                    }
                }
            }
        }
        return null;
    }

    private static string? ConstraintProblem(string? constraint)
    {
        if (constraint is null)
        {
            return "a constraint must be named.";
        }
        var open = constraint.IndexOf('(', StringComparison.Ordinal);
        var name = open < 0 ? constraint : constraint[..open];
        if (!AllowedConstraints.Contains(name, StringComparer.Ordinal))
        {
            return $"constraint '{name}' is not allowed; allowed: {string.Join(", ", AllowedConstraints)}.";
        }
        var expected = name switch
        {
            "length" => new[] { 1, 2 },
            "minlength" or "maxlength" or "min" or "max" => [1],
            "range" => [2],
            _ => [0],
        };
        string[] args = open < 0 ? [] : constraint.EndsWith(')') ? constraint[(open + 1)..^1].Split(',') : ["?"];
        if (!expected.Contains(args.Length) || args.Any(a => !long.TryParse(a.Trim(), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _)))
        {
            return $"constraint '{name}' takes {string.Join(" or ", expected)} whole-number argument(s).";
        }
        return null;
    }
}

/// <summary>
/// A check another module adds to route validation at registration (the gateway: that a route's
/// <c>rateLimit</c> and <c>cors</c> name policies that exist).
/// </summary>
public interface IRouteValidator
{
    /// <param name="field">The route's field name, e.g. <c>routes[0]</c>; problems go under <c>routes[0].rateLimit</c>.</param>
    ValueTask ValidateAsync(RouteDeclaration route, string field, ICollection<(string Field, string Message)> problems, CancellationToken cancellationToken);
}
