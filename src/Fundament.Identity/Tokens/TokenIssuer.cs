using System.Diagnostics.Metrics;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Fundament.Identity.Tokens;

/// <summary>
/// Issues access tokens: JWTs in the RFC 9068 profile (<c>typ: at+jwt</c>) with <c>iss</c>,
/// <c>aud</c>, <c>sub</c>, <c>client_id</c>, <c>roles</c>, <c>jti</c>, <c>iat</c>, <c>exp</c>.
/// </summary>
internal sealed class TokenIssuer
{
    public const string TokenType = "at+jwt";

    /// <summary><c>client_id</c> of tokens issued to people through the login endpoint.</summary>
    public const string FirstPartyClientId = "fundament";

    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly SigningKeyStore _keys;
    private readonly TimeProvider _time;
    private readonly IOptions<IdentityOptions> _options;
    private readonly IssuerUri _issuer;
    private readonly Counter<long> _issued;

    public TokenIssuer(SigningKeyStore keys, TimeProvider time, IOptions<IdentityOptions> options, IssuerUri issuer, IMeterFactory meters)
    {
        _keys = keys;
        _time = time;
        _options = options;
        _issuer = issuer;
        _issued = meters.Create("Fundament.Identity").CreateCounter<long>("fundament.identity.tokens.issued", "{token}", "Access tokens issued, by grant.");
    }

    public (string Token, int ExpiresIn) Issue(TokenSubject subject, string grant)
    {
        var lifetime = _options.Value.AccessTokenLifetime;
        var token = Create(subject, _options.Value.Audience, lifetime, null);
        _issued.Add(1, new KeyValuePair<string, object?>("grant", grant));
        return (token, (int)lifetime.TotalSeconds);
    }

    /// <summary>
    /// A token for one service's audience, issued to the gateway on behalf of the caller it
    /// authenticated: RFC 8693's <c>act</c> names the gateway as the party that presents it.
    /// </summary>
    public string IssueForService(TokenSubject subject, string service, TimeSpan lifetime, IReadOnlyDictionary<string, object>? extra)
    {
        var token = Create(subject, ServiceAudiencePrefix + service, lifetime, extra);
        _issued.Add(1, new KeyValuePair<string, object?>("grant", "gateway_exchange"));
        return token;
    }

    /// <summary>Audience prefix of service tokens; Fundament's own API accepts only <see cref="IdentityOptions.Audience"/>.</summary>
    public const string ServiceAudiencePrefix = "service:";

    private string Create(TokenSubject subject, string audience, TimeSpan lifetime, IReadOnlyDictionary<string, object>? extra)
    {
        var now = _time.GetUtcNow();
        var claims = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            [FundamentClaims.Subject] = subject.Id,
            [FundamentClaims.SubjectType] = subject.Type,
            [FundamentClaims.Name] = subject.Name,
            [FundamentClaims.Roles] = subject.Roles.ToArray(),
            [FundamentClaims.TokenId] = Guid.NewGuid().ToString("N"),
            [FundamentClaims.ClientId] = subject.ClientId,
        };
        if (subject.SessionId is not null)
        {
            claims[FundamentClaims.SessionId] = subject.SessionId;
        }
        foreach (var (name, value) in extra ?? new Dictionary<string, object>())
        {
            claims[name] = value;
        }
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = _issuer.Value,
            Audience = audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = (now + lifetime).UtcDateTime,
            TokenType = TokenType,
            SigningCredentials = _keys.CurrentSigner(),
            Claims = claims,
        });
    }
}

/// <summary>Who a token is for.</summary>
/// <param name="Type"><c>user</c> or <c>client</c>.</param>
internal sealed record TokenSubject(string Id, string Type, string Name, IReadOnlyList<string> Roles, string ClientId, string? SessionId);
