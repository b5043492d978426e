using System.Diagnostics.Metrics;
using Fundament.Security;
using Microsoft.Extensions.Options;
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
        var now = _time.GetUtcNow();
        var lifetime = _options.Value.AccessTokenLifetime;
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
        var token = _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = _issuer.Value,
            Audience = _options.Value.Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = (now + lifetime).UtcDateTime,
            TokenType = TokenType,
            SigningCredentials = _keys.CurrentSigner(),
            Claims = claims,
        });
        _issued.Add(1, new KeyValuePair<string, object?>("grant", grant));
        return (token, (int)lifetime.TotalSeconds);
    }
}

/// <summary>Who a token is for.</summary>
/// <param name="Type"><c>user</c> or <c>client</c>.</param>
internal sealed record TokenSubject(string Id, string Type, string Name, IReadOnlyList<string> Roles, string ClientId, string? SessionId);
