using System.Security.Claims;
using Microsoft.AspNetCore.Authorization;

namespace Fundament.Media;

/// <summary>Who may see and change an asset: owners their own, admins all, others what is shared with them (read-only).</summary>
internal sealed class MediaAccess(IAuthorizationService authorization)
{
    public async Task<Caller> CallerAsync(HttpContext context)
    {
        var user = context.User;
        var admin = (await authorization.AuthorizeAsync(user, MediaPermissions.Admin)).Succeeded;
        var own = admin || (await authorization.AuthorizeAsync(user, MediaPermissions.Own)).Succeeded;
        return new Caller(user.ActorId() ?? "anonymous", user.FindFirst(FundamentClaims.Subject)?.Value, admin, own);
    }

    public async Task<bool> CanReadAsync(Caller caller, AssetRow asset, MediaStore store, CancellationToken cancellationToken) =>
        caller.Admin || asset.Owner == caller.Actor
        || (caller.Subject is not null && await store.IsSharedWithAsync(asset.Id, caller.Subject, cancellationToken));

    public static bool CanWrite(Caller caller, AssetRow asset) => caller.Admin || (caller.Own && asset.Owner == caller.Actor);
}

internal sealed record Caller(string Actor, string? Subject, bool Admin, bool Own);

internal static class ClaimsExtensions
{
    public static string Actor(this ClaimsPrincipal user) => user.ActorId() ?? "anonymous";
}
