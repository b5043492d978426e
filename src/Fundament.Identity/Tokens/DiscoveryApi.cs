using System.Text.Json;

namespace Fundament.Identity.Tokens;

/// <summary>OpenID Connect discovery and the JWKS, so any standard JOSE/OIDC library verifies Fundament tokens.</summary>
internal static class DiscoveryApi
{
    public const string JwksPath = "/.well-known/jwks.json";

    public static IEndpointRouteBuilder MapDiscoveryApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/.well-known/openid-configuration", Configuration)
            .WithTags("Discovery").WithName("OpenIdConfiguration").AllowAnonymous()
            .WithSummary("OpenID Connect discovery document (issuer, jwks_uri, token endpoint).");
        endpoints.MapGet(JwksPath, Jwks)
            .WithTags("Discovery").WithName("Jwks").AllowAnonymous()
            .WithSummary("Public keys of every key that may have signed a still-valid token.");
        return endpoints;
    }

    private static IResult Configuration(IssuerUri issuer, IOptions<IdentityOptions> options, HttpContext context)
    {
        context.Response.Headers.CacheControl = "public, max-age=300";
        var i = issuer.Value;
        return TypedResults.Ok(new Dictionary<string, object>
        {
            ["issuer"] = i,
            ["jwks_uri"] = i + JwksPath,
            ["token_endpoint"] = i + "/oauth2/token",
            ["grant_types_supported"] = new[] { "client_credentials" },
            ["token_endpoint_auth_methods_supported"] = new[] { "client_secret_basic", "client_secret_post" },
            ["response_types_supported"] = new[] { "token" },
            ["subject_types_supported"] = new[] { "public" },
            ["id_token_signing_alg_values_supported"] = new[] { options.Value.SigningAlgorithm },
            ["token_endpoint_auth_signing_alg_values_supported"] = new[] { options.Value.SigningAlgorithm },
            ["claims_supported"] = new[] { "iss", "aud", "sub", "exp", "iat", "nbf", "jti", "name", "roles", "client_id", "sid" },
        });
    }

    private static IResult Jwks(SigningKeyStore keys, HttpContext context)
    {
        // Short cache: a pre-published key appears here minutes before it signs.
        context.Response.Headers.CacheControl = "public, max-age=60";
        var jwks = keys.Published().Select(k => JsonSerializer.Deserialize<JsonElement>(k.PublicJwk)).ToList();
        return TypedResults.Ok(new Dictionary<string, object> { ["keys"] = jwks });
    }
}
