using Microsoft.AspNetCore.Authorization;

namespace Fundament.Core.Security;

/// <summary>Met when one of the caller's roles grants <see cref="Permission"/> (or <c>*</c>).</summary>
public sealed class PermissionRequirement(string permission) : IAuthorizationRequirement
{
    public string Permission { get; } = permission;
}

/// <summary>Maps role names to permissions. The identity module implements it over its role table.</summary>
public interface IRolePermissions
{
    ValueTask<IReadOnlySet<string>> PermissionsOfAsync(IReadOnlyList<string> roles, CancellationToken cancellationToken);
}

internal sealed class PermissionAuthorizationHandler(IRolePermissions rolePermissions) : AuthorizationHandler<PermissionRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, PermissionRequirement requirement)
    {
        if (context.User.Identity?.IsAuthenticated != true)
        {
            return;
        }
        var permissions = await rolePermissions.PermissionsOfAsync(context.User.RolesOf(), CancellationToken.None);
        if (permissions.Contains(Permissions.All) || permissions.Contains(requirement.Permission))
        {
            context.Succeed(requirement);
        }
    }
}
