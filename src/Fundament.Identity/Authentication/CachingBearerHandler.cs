using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Net.Http.Headers;

namespace Fundament.Identity.Authentication;

/// <summary>
/// JWT bearer authentication that validates each distinct token once. The first time a token is
/// seen, <see cref="JwtBearerHandler"/> checks everything (signature, algorithm, issuer, audience,
/// type, lifetime). The resulting identity is remembered under the exact token string until the
/// token's own expiry. Later requests with that string skip the per-request work JwtBearer does
/// even on a hit (copying the validation parameters, building contexts, raising events). They get
/// a copy of the identity, a lifetime check against the clock, a check that its signing key is
/// still published, and the same subject-and-session check (<see cref="CheckSubjectAsync"/>) every
/// request gets.
/// Failures are never remembered, so a forged token is validated (and refused) every time.
/// </summary>
internal sealed class CachingBearerHandler(
    IOptionsMonitor<JwtBearerOptions> options, ILoggerFactory logger, UrlEncoder encoder, ValidatedTokens tokens, PrincipalStatus status,
    Tokens.SigningKeyStore keys, TimeProvider time)
    : JwtBearerHandler(options, logger, encoder)
{
    private const string Bearer = "Bearer ";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers[HeaderNames.Authorization].ToString();
        if (!header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
        {
            return await base.HandleAuthenticateAsync();
        }
        var token = header[Bearer.Length..].Trim();
        if (tokens.Find(token, time.GetUtcNow(), keys.IsPublished) is { } identity)
        {
            var principal = new ClaimsPrincipal(identity);
            return await CheckSubjectAsync(principal, status, Context.RequestAborted) is { } failure
                ? AuthenticateResult.Fail(failure)
                : AuthenticateResult.Success(new AuthenticationTicket(principal, Scheme.Name));
        }
        var result = await base.HandleAuthenticateAsync();
        if (result.Succeeded && result.Principal.Identity is ClaimsIdentity validated
            && long.TryParse(validated.FindFirst("exp")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var exp)
            && new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(token).Kid is { Length: > 0 } kid)
        {
            tokens.Remember(token, validated, DateTimeOffset.FromUnixTimeSeconds(exp), kid);
        }
        return result;
    }

    /// <summary>
    /// What every authenticated request is checked for after the token itself: a user or client
    /// subject that is still enabled, and (for users) a session that was not revoked. The token's
    /// roles are narrowed to those the subject still holds, so taking a role away takes effect
    /// within <see cref="PrincipalStatus.CacheFor"/>, not at token expiry (a role given since takes
    /// effect with the next token). Null when fine.
    /// </summary>
    public static async ValueTask<string?> CheckSubjectAsync(ClaimsPrincipal principal, PrincipalStatus status, CancellationToken cancellationToken)
    {
        var type = principal.FindFirst(FundamentClaims.SubjectType)?.Value;
        var sub = principal.FindFirst(FundamentClaims.Subject)?.Value;
        if (type is not ("user" or "client") || sub is null)
        {
            return "The token has no valid subject.";
        }
        var state = await status.StateAsync(type, sub, principal.FindFirst(FundamentClaims.SessionId)?.Value, cancellationToken);
        if (!state.Active)
        {
            return "The token's subject is disabled or its session has ended.";
        }
        if (state.IssuedNotBefore > 0
            && (!long.TryParse(principal.FindFirst("iat")?.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var issuedAt)
                || issuedAt < state.IssuedNotBefore))
        {
            return "The token was issued before the client's secret was rotated.";
        }
        if (principal.Identity is ClaimsIdentity identity)
        {
            foreach (var role in identity.FindAll(FundamentClaims.Roles).Where(r => !state.Roles.Contains(r.Value, StringComparer.Ordinal)).ToList())
            {
                identity.RemoveClaim(role);
            }
        }
        return null;
    }
}

/// <summary>
/// Token strings that passed full validation, with their identity, until their expiry. Bounded:
/// dropped whole past <see cref="MaxEntries"/> (every token is then validated once more).
/// </summary>
internal sealed class ValidatedTokens
{
    public const int MaxEntries = 50_000;

    private readonly ConcurrentDictionary<string, (ClaimsIdentity Identity, DateTimeOffset Expires, string Kid)> _valid = new(StringComparer.Ordinal);

    /// <summary>
    /// A copy of the identity (callers may add to it), or null when unknown, expired, or signed
    /// with a key that is no longer published (<paramref name="published"/>), so retiring a key
    /// ends its tokens at once, cached or not.
    /// </summary>
    public ClaimsIdentity? Find(string token, DateTimeOffset now, Func<string, bool> published)
    {
        if (!_valid.TryGetValue(token, out var hit))
        {
            return null;
        }
        if (hit.Expires > now && published(hit.Kid))
        {
            return hit.Identity.Clone();
        }
        _valid.TryRemove(token, out _);
        return null;
    }

    public void Remember(string token, ClaimsIdentity identity, DateTimeOffset expires, string kid)
    {
        if (_valid.Count >= MaxEntries)
        {
            _valid.Clear();
        }
        _valid[token] = (identity.Clone(), expires, kid);
    }
}
