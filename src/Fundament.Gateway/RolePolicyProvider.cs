using Microsoft.AspNetCore.Authorization;

namespace Fundament.Gateway;

/// <summary>Understands the gateway's <c>role:&lt;name&gt;</c> route policies; everything else goes to the default provider.</summary>
internal sealed class RolePolicyProvider(IOptions<AuthorizationOptions> options) : DefaultAuthorizationPolicyProvider(options)
{
    public const string Prefix = "role:";

    public override Task<AuthorizationPolicy?> GetPolicyAsync(string policyName)
    {
        if (policyName.StartsWith(Prefix, StringComparison.Ordinal) && policyName.Length > Prefix.Length)
        {
            var role = policyName[Prefix.Length..];
            return Task.FromResult<AuthorizationPolicy?>(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().RequireClaim(FundamentClaims.Roles, role).Build());
        }
        return base.GetPolicyAsync(policyName);
    }
}
