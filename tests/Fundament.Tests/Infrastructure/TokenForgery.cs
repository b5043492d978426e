using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Fundament.Tests.Infrastructure;

/// <summary>Forged variants of a genuine access token, as an attacker (or an insider with the signing key) would make them.</summary>
public static class TokenForgery
{
    public static TheoryData<string> Kinds() => ["alg-none", "wrong-key", "hs256-with-public-key", "wrong-issuer", "wrong-audience", "expired", "wrong-typ", "tampered-payload"];

    /// <summary>
    /// Forges <paramref name="genuine"/>; <c>expired</c> moves the factory's clock past its lifetime.
    /// <paramref name="api"/> reaches the server's JWKS.
    /// </summary>
    public static async Task<string> ForgeAsync(FundamentFactory factory, HttpClient api, string forgery, string genuine, CancellationToken ct)
    {
        var parts = genuine.Split('.');
        var header = JsonNode.Parse(Base64UrlEncoder.Decode(parts[0]))!.AsObject();
        var payload = JsonNode.Parse(Base64UrlEncoder.Decode(parts[1]))!.AsObject();
        var kid = header["kid"]!.GetValue<string>();

        string Encode(JsonObject json) => Base64UrlEncoder.Encode(json.ToJsonString());
        string SignEs256(JsonObject h, JsonObject p, ECDsa key)
        {
            var input = Encode(h) + "." + Encode(p);
            var signature = key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256);
            return input + "." + Base64UrlEncoder.Encode(signature);
        }

        switch (forgery)
        {
            case "alg-none":
                header["alg"] = "none";
                return Encode(header) + "." + Encode(payload) + ".";
            case "wrong-key":
            {
                using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                return SignEs256(header, payload, attacker);
            }
            case "hs256-with-public-key":
            {
                var jwks = await (await api.GetAsync("/.well-known/jwks.json", ct)).Content.ReadAsStringAsync(ct);
                var jwk = JsonNode.Parse(jwks)!["keys"]!.AsArray().Single(k => k!["kid"]!.GetValue<string>() == kid)!.ToJsonString();
                header["alg"] = "HS256";
                var input = Encode(header) + "." + Encode(payload);
                // Classic confusion attack: the public key (as published) used as the HMAC secret.
                var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(jwk), Encoding.ASCII.GetBytes(input));
                return input + "." + Base64UrlEncoder.Encode(mac);
            }
            case "wrong-issuer":
                payload["iss"] = "https://evil.example";
                return ResignWithServerKey(factory, header, payload);
            case "wrong-audience":
                payload["aud"] = "someone-else";
                return ResignWithServerKey(factory, header, payload);
            case "wrong-typ":
                header.Remove("typ");
                return ResignWithServerKey(factory, header, payload);
            case "expired":
                factory.Time.Advance(TimeSpan.FromMinutes(16));
                return genuine;
            case "tampered-payload":
                payload["roles"] = new JsonArray("admin", "superuser");
                payload["sub"] = Guid.NewGuid().ToString();
                return Encode(header) + "." + Encode(payload) + "." + parts[2];
            default:
                throw new ArgumentOutOfRangeException(nameof(forgery));
        }
    }

    /// <summary>
    /// Signs with the server's own current key, taken from the store as an insider would, to show
    /// that iss, aud and typ are checked on their own and not only the signature.
    /// </summary>
    private static string ResignWithServerKey(FundamentFactory factory, JsonObject header, JsonObject payload)
    {
        var credentials = factory.Services.GetRequiredService<Fundament.Identity.Tokens.SigningKeyStore>().CurrentSigner();
        var handler = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false };
        // Without a typ header the handler writes "JWT", which is not the access token type either.
        var typ = header["typ"]?.GetValue<string>() ?? "JWT";
        return handler.CreateToken(payload.ToJsonString(), credentials, new Dictionary<string, object> { ["typ"] = typ });
    }
}
