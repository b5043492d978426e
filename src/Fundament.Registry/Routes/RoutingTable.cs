namespace Fundament.Registry.Routes;

/// <summary>An instance as the gateway needs it; <see cref="RoutesJson"/> is the array it registered.</summary>
public sealed record RoutableInstance(string InstanceId, string Service, string Address, int Port, string Scheme, string Status, string? Version, string RoutesJson);

/// <summary>Everything the gateway routes from, at one registry change index.</summary>
public sealed record RoutingTable(long Index, IReadOnlyList<RoutableInstance> Instances, RouteOwnership Ownership);

/// <summary>The registry's routing view for the gateway.</summary>
public interface IRoutingTableSource
{
    /// <summary>
    /// Every instance with its declared routes and the claims in force; with
    /// <paramref name="knownIndex"/> it first waits (up to <paramref name="wait"/>) for a change past it.
    /// </summary>
    Task<RoutingTable> GetAsync(long? knownIndex, TimeSpan wait, CancellationToken cancellationToken);
}

/// <summary>
/// Claims another module holds by configuration rather than through the API (the gateway's static
/// routes). They take part in every overlap decision, so a tenant can neither claim nor route into
/// them; their holder names contain a ':', which no service name can.
/// </summary>
public interface IRouteClaimSource
{
    IEnumerable<RouteClaim> Claims();
}
