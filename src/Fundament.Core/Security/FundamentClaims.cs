using System.Security.Claims;

namespace Fundament.Core.Security;

/// <summary>Claim names in Fundament tokens and principals (JWT names, not the WS-* URIs).</summary>
public static class FundamentClaims
{
    public const string Subject = "sub";
    public const string Name = "name";
    public const string Roles = "roles";
    public const string ClientId = "client_id";
    public const string SessionId = "sid";
    public const string TokenId = "jti";

    /// <summary><c>user</c> or <c>client</c>.</summary>
    public const string SubjectType = "subject_type";

    /// <summary>How the caller authenticated: <c>jwt</c> or <c>apikey</c>.</summary>
    public const string AuthMethod = "auth_method";

    public const string ApiKeyId = "api_key_id";

    public static string? UserId(this ClaimsPrincipal principal) =>
        principal.FindFirst(SubjectType)?.Value == "user" ? principal.FindFirst(Subject)?.Value : null;

    public static string? ClientIdOf(this ClaimsPrincipal principal) =>
        principal.FindFirst(SubjectType)?.Value == "client" ? principal.FindFirst(Subject)?.Value : null;

    /// <summary><c>user:&lt;id&gt;</c> or <c>client:&lt;id&gt;</c> for audit and ownership.</summary>
    public static string? ActorId(this ClaimsPrincipal principal)
    {
        var type = principal.FindFirst(SubjectType)?.Value;
        var sub = principal.FindFirst(Subject)?.Value;
        return type is null || sub is null ? null : $"{type}:{sub}";
    }

    public static IReadOnlyList<string> RolesOf(this ClaimsPrincipal principal) =>
        principal.FindAll(Roles).Select(c => c.Value).Distinct(StringComparer.Ordinal).ToList();
}
