using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Routing.Patterns;

namespace Fundament.Registry.Routes;

/// <summary>
/// Paths as the claim rules see them: segments after normalisation. Percent-encoding is decoded
/// (an encoded slash becomes a separator), letters are lower-cased (the gateway matches literals
/// case-insensitively), duplicate slashes collapse and dot-segments are resolved. A route
/// template's <em>literal prefix</em> is its segments up to the first one holding a parameter or
/// a catch-all: every request the template can match starts with it.
/// </summary>
public static partial class RoutePaths
{
    /// <summary>The fundament service: the only holder of <see cref="Reserved"/>, registered by Fundament's own nodes.</summary>
    public const string FundamentService = "fundament";

    /// <summary>
    /// Fundament's own paths, held by <see cref="FundamentService"/>. Every endpoint the platform
    /// maps must lie under one of them (checked at start-up, <see cref="ReservedPathsGuard"/>),
    /// so a path the platform adds later cannot be claimed by a tenant first.
    /// </summary>
    public static IReadOnlyList<string> Reserved { get; } = ["/api", "/oauth2", "/.well-known", "/connect", "/console", "/health", "/metrics", "/openapi"];

    private static readonly string[][] ReservedSegments = [.. Reserved.Select(Normalize)];

    [GeneratedRegex("^v[0-9]+$")]
    private static partial Regex VersionSegment();

    /// <summary>The normalised segments of <paramref name="path"/>.</summary>
    public static string[] Normalize(string path)
    {
        string decoded;
        try
        {
            decoded = Uri.UnescapeDataString(path);
        }
        catch (UriFormatException)
        {
            decoded = path;
        }
        var segments = new List<string>();
        foreach (var raw in decoded.Replace('\\', '/').Split('/'))
        {
            var segment = raw.ToLowerInvariant();
            if (segment.Length == 0 || segment == ".")
            {
                continue;
            }
            if (segment == "..")
            {
                if (segments.Count > 0)
                {
                    segments.RemoveAt(segments.Count - 1);
                }
                continue;
            }
            segments.Add(segment);
        }
        return [.. segments];
    }

    /// <summary>
    /// The literal prefix of a route template: its leading segments that are one plain literal
    /// each, lower-cased. The template is read by ASP.NET Core's own parser, the one the gateway
    /// routes with, so text inside a parameter (a default value or a constraint argument holding
    /// <c>/../</c>) can never pass for a path segment. A literal holding <c>%</c>, <c>\</c>, or
    /// being <c>.</c> or <c>..</c> ends the prefix: it matches nothing a client sends in that form,
    /// so it cannot be trusted to name a place. A template that does not parse is judged on its
    /// normal form (it is refused as invalid anyway).
    /// </summary>
    public static string[] LiteralPrefix(string template)
    {
        RoutePattern pattern;
        try
        {
            pattern = RoutePatternFactory.Parse(template);
        }
        catch (RoutePatternException)
        {
            return [.. Normalize(template).TakeWhile(IsPlainLiteral)];
        }
        // A dot-segment or an escape anywhere makes the whole template suspect: it claims nothing.
        if (pattern.PathSegments.Any(s => s.IsSimple && s.Parts[0] is RoutePatternLiteralPart { Content: "." or ".." })
            || pattern.PathSegments.SelectMany(s => s.Parts).OfType<RoutePatternLiteralPart>().Any(l => l.Content.IndexOfAny(['%', '\\']) >= 0))
        {
            return [];
        }
        var prefix = new List<string>();
        foreach (var segment in pattern.PathSegments)
        {
            if (!segment.IsSimple || segment.Parts[0] is not RoutePatternLiteralPart literal || !IsPlainLiteral(literal.Content))
            {
                break;
            }
            prefix.Add(literal.Content.ToLowerInvariant());
        }
        return [.. prefix];
    }

    /// <summary>A literal segment that means what it says: not empty, not a dot-segment, no escapes, separators or template characters.</summary>
    public static bool IsPlainLiteral(string segment) =>
        segment.Length > 0 && segment is not ("." or "..") && segment.IndexOfAny(['%', '\\', '/', '{', '}', '*', '?']) < 0;

    /// <summary>Whether <paramref name="prefix"/> covers <paramref name="path"/> (equal, or an ancestor on segment boundaries).</summary>
    public static bool Covers(string[] prefix, string[] path) =>
        prefix.Length <= path.Length && prefix.AsSpan().SequenceEqual(path.AsSpan(0, prefix.Length));

    /// <summary>Whether two prefixes share any request path: one covers the other.</summary>
    public static bool Overlap(string[] a, string[] b) => Covers(a, b) || Covers(b, a);

    public static string Format(string[] segments) => "/" + string.Join('/', segments);

    /// <summary>The reserved prefix <paramref name="segments"/> overlaps, if any.</summary>
    public static string? ReservedOverlap(string[] segments) =>
        ReservedSegments.FirstOrDefault(r => Overlap(r, segments)) is { } reserved ? Format(reserved) : null;

    /// <summary><c>/v1</c>, <c>/v2</c>, ...: the gateway's API-version prefixes, which nobody may claim.</summary>
    public static bool IsVersionSegment(string segment) => VersionSegment().IsMatch(segment);

    /// <summary>The prefix a service holds without asking (<c>/&lt;name&gt;</c>), or null when its name is a reserved or version segment.</summary>
    public static string[]? DefaultClaim(string service)
    {
        var claim = Normalize("/" + service);
        return claim.Length != 1 || IsVersionSegment(claim[0]) || (service != FundamentService && ReservedOverlap(claim) is not null) ? null : claim;
    }
}
