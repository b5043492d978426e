using System.Security.Claims;
using System.Text.Encodings.Web;
using Fundament.Identity.ApiKeys;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Net.Http.Headers;

namespace Fundament.Identity.Authentication;

/// <summary>Accepts <c>Authorization: ApiKey &lt;key&gt;</c>.</summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers[HeaderNames.Authorization].ToString();
        if (!header.StartsWith(ApiKeyStore.Scheme + " ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }
        var key = header[(ApiKeyStore.Scheme.Length + 1)..].Trim();
        if (key.Length is 0 or > 200 || !key.StartsWith("fk_", StringComparison.Ordinal))
        {
            return AuthenticateResult.Fail("Malformed API key.");
        }
        var principal = await keys.AuthenticateAsync(key, Context.RequestAborted);
        if (principal is null)
        {
            return AuthenticateResult.Fail("Unknown, revoked or expired API key.");
        }
        var claims = new List<Claim>
        {
            new(FundamentClaims.Subject, principal.UserId),
            new(FundamentClaims.SubjectType, "user"),
            new(FundamentClaims.Name, principal.Username),
            new(FundamentClaims.AuthMethod, "apikey"),
            new(FundamentClaims.ApiKeyId, principal.KeyId),
        };
        claims.AddRange(principal.Roles.Select(r => new Claim(FundamentClaims.Roles, r)));
        var identity = new ClaimsIdentity(claims, Scheme.Name, FundamentClaims.Name, FundamentClaims.Roles);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = 401;
        Response.Headers[HeaderNames.WWWAuthenticate] = ApiKeyStore.Scheme;
        return Task.CompletedTask;
    }
}
