using Fundament.Identity.ApiKeys;
using Fundament.Identity.Tokens;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
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
            // JwtBearer with a cache of validated tokens in front (CachingBearerHandler).
            .AddScheme<JwtBearerOptions, CachingBearerHandler>(JwtBearerDefaults.AuthenticationScheme, null)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyStore.Scheme, null);
        services.AddSingleton<ValidatedTokens>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<JwtBearerOptions>, JwtBearerPostConfigureOptions>());

        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<SigningKeyStore, IssuerUri, IOptions<IdentityOptions>, TimeProvider>((options, keys, issuer, identity, time) =>
            {
                var skew = identity.Value.ClockSkew;
                options.MapInboundClaims = false;
                options.RequireHttpsMetadata = false;
                options.TokenHandlers.Clear();
                options.TokenHandlers.Add(new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler { MapInboundClaims = false });
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
                        var status = context.HttpContext.RequestServices.GetRequiredService<PrincipalStatus>();
                        if (await CachingBearerHandler.CheckSubjectAsync(context.Principal!, status, context.HttpContext.RequestAborted) is { } failure)
                        {
                            context.Fail(failure);
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
