using System.Collections.Concurrent;

namespace Fundament.Identity.Tokens;

/// <summary>
/// Mints the tokens the gateway sends upstream (<c>forwardAuthorization: exchange</c>): audience
/// <c>service:&lt;name&gt;</c>, at most five minutes, with <c>sub</c>, <c>subject_type</c>,
/// <c>name</c>, <c>roles</c>, <c>client_id</c>, <c>sid</c> when the caller has a session, and
/// <c>act: {"sub":"fundament-gateway"}</c>. Fundament's own API refuses them (wrong audience).
/// It never outlives the caller's own token. A token is reused for the same caller, name, roles,
/// session and service until half its lifetime has passed, so the gateway signs once per caller and service every few minutes rather than on
/// every request. The cache is bounded and dropped whole when full.
/// </summary>
internal sealed class ServiceTokenIssuer(TokenIssuer issuer, SigningKeyStore keys, TimeProvider time, IOptions<IdentityOptions> options) : IServiceTokenIssuer
{
    public const string GatewayActor = "fundament-gateway";
    private const int MaxEntries = 50_000;

    private static readonly IReadOnlyDictionary<string, object> Actor = new Dictionary<string, object>
    {
        ["act"] = new Dictionary<string, object> { [FundamentClaims.Subject] = GatewayActor },
    };

    private readonly ConcurrentDictionary<string, (string Token, DateTimeOffset RenewAt, string? Kid)> _issued = new(StringComparer.Ordinal);

    public string IssueFor(System.Security.Claims.ClaimsPrincipal caller, string service)
    {
        var type = caller.FindFirst(FundamentClaims.SubjectType)?.Value ?? throw new InvalidOperationException("The caller has no subject.");
        var sub = caller.FindFirst(FundamentClaims.Subject)?.Value ?? throw new InvalidOperationException("The caller has no subject.");
        var roles = caller.RolesOf();
        var session = caller.FindFirst(FundamentClaims.SessionId)?.Value;
        var clientId = caller.FindFirst(FundamentClaims.ClientId)?.Value ?? TokenIssuer.FirstPartyClientId;
        var apiKey = caller.FindFirst(FundamentClaims.ApiKeyId)?.Value;
        var name = caller.FindFirst(FundamentClaims.Name)?.Value ?? sub;
        var now = time.GetUtcNow();
        // Never longer than the credential it stands for.
        var lifetime = options.Value.ServiceTokenLifetime;
        if (long.TryParse(caller.FindFirst("exp")?.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var exp))
        {
            var left = DateTimeOffset.FromUnixTimeSeconds(exp) - now;
            lifetime = left < lifetime ? (left > TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1)) : lifetime;
        }
        var key = string.Join('\n', service, type, sub, name, session, clientId, apiKey, string.Join(',', roles));
        var signer = keys.CurrentKid;
        if (_issued.TryGetValue(key, out var cached) && now < cached.RenewAt && cached.Kid == signer)
        {
            return cached.Token;
        }
        var extra = apiKey is null ? Actor : new Dictionary<string, object>(Actor) { [FundamentClaims.ApiKeyId] = apiKey };
        var token = issuer.IssueForService(
            new TokenSubject(sub, type, name, roles, clientId, session), service, lifetime, extra);
        if (_issued.Count >= MaxEntries)
        {
            _issued.Clear();
        }
        _issued[key] = (token, now + lifetime / 2, signer);
        return token;
    }
}
