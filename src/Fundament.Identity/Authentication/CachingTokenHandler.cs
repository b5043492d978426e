using System.Collections.Concurrent;
using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Fundament.Identity.Authentication;

/// <summary>
/// Remembers which exact token strings passed validation (signature, issuer, audience, type), until
/// the token's own expiry, so a client presenting the same token on every request pays for one
/// ES256 verification instead of one per request. A hit still checks the lifetime against the clock,
/// hands out a copy of the identity, and the per-request subject and session check still runs
/// (<c>OnTokenValidated</c>). Failures are never cached. Bounded: the cache is dropped whole past
/// <see cref="MaxEntries"/>.
/// </summary>
internal sealed class CachingTokenHandler(TimeProvider time) : JsonWebTokenHandler
{
    public const int MaxEntries = 50_000;

    private readonly ConcurrentDictionary<string, Entry> _valid = new(StringComparer.Ordinal);

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        var now = time.GetUtcNow().UtcDateTime;
        if (_valid.TryGetValue(token, out var hit))
        {
            if (hit.Expires > now)
            {
                return new TokenValidationResult
                {
                    IsValid = true,
                    ClaimsIdentity = hit.Identity.Clone(),
                    SecurityToken = hit.Token,
                    Issuer = hit.Issuer,
                    TokenType = hit.TokenType,
                };
            }
            _valid.TryRemove(token, out _);
        }
        var result = await base.ValidateTokenAsync(token, validationParameters).ConfigureAwait(false);
        if (result.IsValid && result.SecurityToken is JsonWebToken jwt && result.ClaimsIdentity is { } identity && jwt.ValidTo > now)
        {
            if (_valid.Count >= MaxEntries)
            {
                _valid.Clear();
            }
            _valid[token] = new Entry(identity.Clone(), jwt, result.Issuer, result.TokenType, jwt.ValidTo);
        }
        return result;
    }

    private sealed record Entry(ClaimsIdentity Identity, JsonWebToken Token, string? Issuer, string? TokenType, DateTime Expires);
}
