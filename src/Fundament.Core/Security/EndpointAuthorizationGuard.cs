using Microsoft.AspNetCore.Authorization;

namespace Fundament.Core.Security;

/// <summary>
/// Every endpoint must say who may call it: a policy, or explicit anonymous access. Checked once
/// at start-up, so an endpoint that forgets is a failed start, not an open door.
/// </summary>
public static class EndpointAuthorizationGuard
{
    public static void EnsureEveryEndpointHasAPolicy(this IEndpointRouteBuilder endpoints)
    {
        var missing = endpoints.DataSources
            .SelectMany(source => source.Endpoints)
            .Where(e => e.Metadata.GetMetadata<IAllowAnonymous>() is null && e.Metadata.GetMetadata<IAuthorizeData>() is null)
            .Select(e => e.DisplayName ?? "(unnamed endpoint)")
            .ToList();
        if (missing.Count > 0)
        {
            throw new StartupException("These endpoints name no authorization policy: " + string.Join("; ", missing));
        }
    }
}
