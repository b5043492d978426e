using System.Security.Claims;

namespace Fundament.Core.Modules;

/// <summary>
/// Token exchange for the gateway (implemented by the identity module): a short-lived access token
/// for audience <c>service:&lt;name&gt;</c> that carries the caller the gateway authenticated, so
/// an upstream learns who calls without ever holding a credential valid anywhere else.
/// </summary>
public interface IServiceTokenIssuer
{
    /// <summary>A token for <paramref name="service"/> on behalf of <paramref name="caller"/>; the same token is reused while most of its lifetime remains.</summary>
    string IssueFor(ClaimsPrincipal caller, string service);
}
