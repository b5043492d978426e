namespace Fundament.Registry.Routes;

/// <summary>An explicit claim: <see cref="Service"/> may serve paths under <see cref="PathPrefix"/> (normalised).</summary>
public sealed record RouteClaim(string Service, string PathPrefix, string CreatedBy, DateTimeOffset CreatedAt)
{
    internal string[] Segments { get; } = RoutePaths.Normalize(PathPrefix);
}

/// <summary>Whether a route may be served, and if not, why (naming the claim it lacks or the holder in the way).</summary>
public readonly record struct RouteVerdict(bool Allowed, string? Reason)
{
    public static RouteVerdict Allow { get; } = new(true, null);
}

/// <summary>
/// Who may serve which paths. A service holds <c>/&lt;name&gt;</c> by default and whatever an
/// operator claimed for it; <see cref="RoutePaths.FundamentService"/> alone holds the reserved
/// paths. A route is allowed only when its literal prefix lies inside one of its service's claims
/// and nothing it could match lies inside another service's explicit claim or a reserved path.
/// The registry decides with this at registration, and the gateway again when it builds its
/// routes, so a claim revoked later cannot leave a route behind.
/// </summary>
public sealed class RouteOwnership(IEnumerable<RouteClaim> claims)
{
    private readonly List<RouteClaim> _claims = [.. claims];

    public IReadOnlyList<RouteClaim> Claims => _claims;

    /// <summary>The prefixes <paramref name="service"/> holds: its default one, then its explicit claims.</summary>
    public IReadOnlyList<string> ClaimsOf(string service)
    {
        var held = new List<string>();
        if (RoutePaths.DefaultClaim(service) is { } own)
        {
            held.Add(RoutePaths.Format(own));
        }
        if (service == RoutePaths.FundamentService)
        {
            held.AddRange(RoutePaths.Reserved);
        }
        held.AddRange(_claims.Where(c => c.Service == service).Select(c => c.PathPrefix));
        return held;
    }

    /// <summary>May <paramref name="service"/> serve the route template <paramref name="path"/>?</summary>
    public RouteVerdict Check(string service, string path)
    {
        var literal = RoutePaths.LiteralPrefix(path);
        var shown = RoutePaths.Format(literal);
        if (RoutePaths.ReservedOverlap(literal) is { } reserved)
        {
            if (service != RoutePaths.FundamentService)
            {
                return new(false, $"{path} could match requests under {reserved}, which is reserved for Fundament's own API");
            }
            if (RoutePaths.Reserved.Any(r => RoutePaths.Covers(RoutePaths.Normalize(r), literal)))
            {
                return RouteVerdict.Allow;
            }
        }
        foreach (var other in _claims)
        {
            if (other.Service != service && RoutePaths.Overlap(other.Segments, literal))
            {
                return new(false, $"{path} could match requests under {other.PathPrefix}, which service '{other.Service}' holds");
            }
        }
        var held = ClaimsOf(service);
        if (held.Any(c => RoutePaths.Covers(RoutePaths.Normalize(c), literal)))
        {
            return RouteVerdict.Allow;
        }
        var holder = literal.Length > 0 && literal[0] != service && RoutePaths.DefaultClaim(literal[0]) is not null
            ? $"; {RoutePaths.Format(literal[..1])} is held by service '{literal[0]}'"
            : "";
        var holds = held.Count == 0 ? "no claims" : string.Join(", ", held);
        return new(false, $"{path} needs a claim on {shown}, which '{service}' lacks (it holds {holds}){holder}");
    }

    /// <summary>
    /// Why <paramref name="service"/> may not claim <paramref name="prefix"/>: the holder whose claim
    /// it would overlap (another explicit claim, the default claim of a service that exists, or
    /// Fundament's reserved paths), or null when it may.
    /// </summary>
    public (string Holder, string Prefix)? ConflictFor(string service, string[] prefix, IReadOnlySet<string> existingServices)
    {
        if (RoutePaths.ReservedOverlap(prefix) is { } reserved && service != RoutePaths.FundamentService)
        {
            return (RoutePaths.FundamentService, reserved);
        }
        foreach (var other in _claims)
        {
            if (other.Service != service && RoutePaths.Overlap(other.Segments, prefix))
            {
                return (other.Service, other.PathPrefix);
            }
        }
        foreach (var existing in existingServices)
        {
            if (existing != service && RoutePaths.DefaultClaim(existing) is { } theirs && RoutePaths.Overlap(theirs, prefix))
            {
                return (existing, RoutePaths.Format(theirs));
            }
        }
        return null;
    }
}
