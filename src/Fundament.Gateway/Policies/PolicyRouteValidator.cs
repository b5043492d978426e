using Fundament.Registry.Routes;

namespace Fundament.Gateway.Policies;

/// <summary>
/// At registration: a route's <c>rateLimit</c> and <c>cors</c> must name policies that exist. A name
/// this node has not seen yet is looked up in the store before it is refused, so a policy created
/// through another replica a moment ago is found.
/// </summary>
internal sealed class PolicyRouteValidator(GatewayPolicyCatalog catalog) : IRouteValidator
{
    public async ValueTask ValidateAsync(RouteDeclaration route, string field, ICollection<(string Field, string Message)> problems, CancellationToken cancellationToken)
    {
        if (!Known(catalog.Current, route))
        {
            await catalog.ReloadAsync(cancellationToken);
        }
        var snapshot = catalog.Current;
        if (route.RateLimit is { } limit && !snapshot.RateLimits.ContainsKey(limit))
        {
            problems.Add(($"{field}.rateLimit", $"unknown rate-limit policy '{limit}'; known: {Names(snapshot.RateLimits.Keys)}. PUT /api/v1/gateway/policies/rate-limit/{{name}} adds one."));
        }
        if (route.Cors is { } cors && !snapshot.Cors.ContainsKey(cors))
        {
            problems.Add(($"{field}.cors", $"unknown CORS policy '{cors}'; known: {Names(snapshot.Cors.Keys)}. PUT /api/v1/gateway/policies/cors/{{name}} adds one."));
        }
    }

    private static bool Known(PolicySnapshot snapshot, RouteDeclaration route) =>
        (route.RateLimit is null || snapshot.RateLimits.ContainsKey(route.RateLimit)) && (route.Cors is null || snapshot.Cors.ContainsKey(route.Cors));

    private static string Names(IEnumerable<string> names) => names.Any() ? string.Join(", ", names.Order(StringComparer.Ordinal)) : "none";
}
