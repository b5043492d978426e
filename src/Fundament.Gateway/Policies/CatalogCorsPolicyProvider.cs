using Microsoft.AspNetCore.Cors.Infrastructure;

namespace Fundament.Gateway.Policies;

/// <summary>CORS policies by name from the catalog, so a changed policy applies to the next preflight.</summary>
internal sealed class CatalogCorsPolicyProvider(GatewayPolicyCatalog catalog) : ICorsPolicyProvider
{
    public Task<CorsPolicy?> GetPolicyAsync(HttpContext context, string? policyName) =>
        Task.FromResult(policyName is not null && catalog.Current.CorsPolicies.TryGetValue(policyName, out var policy) ? policy : null);
}
