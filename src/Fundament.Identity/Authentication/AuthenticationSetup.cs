using Fundament.Identity.ApiKeys;
using Fundament.Identity.Tokens;
using Fundament.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using Microsoft.Net.Http.Headers;

namespace Fundament.Identity.Authentication;

internal static class AuthenticationSetup
{
    /// <summary>The default scheme: picks API key or bearer by the Authorization header.</summary>
    public const string Scheme = "Fundament";

    public static IServiceCollection AddFundamentAuthentication(this IServiceCollection services)
    {
        services.AddAuthentication(Scheme)
            .AddPolicyScheme(Scheme, "Bearer token or API key", options =>
            {
                options.ForwardDefaultSelector = context =>
                    context.Request.Headers[HeaderNames.Authorization].ToString().StartsWith(ApiKeyStore.Scheme + " ", StringComparison.OrdinalIgnoreCase)
                        ? ApiKeyStore.Scheme
                        : JwtBearerDefaults.AuthenticationScheme;
            })
            .AddJwtBearer()
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyStore.Scheme, null);

        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<SigningKeyStore, IssuerUri, IOptions<IdentityOptions>, TimeProvider>((options, keys, issuer, identity, time) =>
            {
                var skew = identity.Value.ClockSkew;
                options.MapInboundClaims = false;
                options.RequireHttpsMetadata = false;
                options.TokenHandlers.Clear();
                options.TokenHandlers.Add(new CachingTokenHandler(time) { MapInboundClaims = false });
                options.TokenValidationParameters = new TokenValidationParameters
                {
                    ValidIssuer = issuer.Value,
                    ValidAudience = identity.Value.Audience,
                    ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256],
                    ValidTypes = [TokenIssuer.TokenType],
                    RequireSignedTokens = true,
                    RequireExpirationTime = true,
                    ValidateIssuerSigningKey = true,
                    NameClaimType = FundamentClaims.Name,
                    RoleClaimType = FundamentClaims.Roles,
                    ClockSkew = skew,
                    IssuerSigningKeyResolver = (_, _, kid, _) => keys.ValidationKeys(kid),
                    // The injected clock, so tests can move time and operators can trust one notion of "now".
                    LifetimeValidator = (notBefore, expires, _, _) =>
                    {
                        var now = time.GetUtcNow().UtcDateTime;
                        return expires is { } exp && exp + skew > now && (notBefore is not { } nbf || nbf - skew <= now);
                    },
                };
                options.Events = new JwtBearerEvents
                {
                    OnTokenValidated = async context =>
                    {
                        var principal = context.Principal!;
                        var type = principal.FindFirst(FundamentClaims.SubjectType)?.Value;
                        var sub = principal.FindFirst(FundamentClaims.Subject)?.Value;
                        if (type is not ("user" or "client") || sub is null)
                        {
                            context.Fail("The token has no valid subject.");
                            return;
                        }
                        var status = context.HttpContext.RequestServices.GetRequiredService<PrincipalStatus>();
                        if (!await status.IsActiveAsync(type, sub, principal.FindFirst(FundamentClaims.SessionId)?.Value, context.HttpContext.RequestAborted))
                        {
                            context.Fail("The token's subject is disabled or its session has ended.");
                        }
                    },
                };
            });

        // No fallback policy: it would also answer unknown routes with 401 instead of 404. Instead the
        // server refuses to start when an endpoint names no policy (EndpointAuthorizationGuard).
        services.AddAuthorization(options => options.AddPolicy(Policies.Authenticated, policy => policy.RequireAuthenticatedUser()));
        return services;
    }
}
