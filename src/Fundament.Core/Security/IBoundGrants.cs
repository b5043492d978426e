namespace Fundament.Core.Security;

/// <summary>
/// Power bound to a principal or a role by name rather than through its permissions: vault
/// policies for <c>role:x</c> or <c>user:id</c>, registry grants for a client, generous quota
/// overrides. The escalation rule counts it: handing out such a role, or taking over (resetting,
/// rotating, re-enabling) such a principal, needs the permissions each module names here.
/// </summary>
public interface IBoundGrants
{
    /// <summary>
    /// The permissions an actor must hold to hand out, or act on, <paramref name="subjects"/>
    /// (<c>role:&lt;name&gt;</c>, <c>user:&lt;id&gt;</c>, <c>client:&lt;id&gt;</c>) because of what
    /// this module binds to them; empty when it binds nothing.
    /// </summary>
    Task<IReadOnlyCollection<string>> RequiredForAsync(IReadOnlyCollection<string> subjects, CancellationToken cancellationToken);
}
