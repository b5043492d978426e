using Fundament.Client;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.Tokens;

namespace Microsoft.Extensions.Hosting;

/// <summary>Validates the tokens Fundament's gateway sends a service.</summary>
public static class FundamentAuthenticationExtensions
{
    /// <summary>The audience of tokens minted for a service: <c>service:&lt;name&gt;</c>.</summary>
    public static string ServiceAudience(string service) => "service:" + service;

    /// <summary>
    /// Adds JWT bearer authentication (the default scheme) that accepts exactly the tokens the
    /// gateway mints for this service: audience <c>service:&lt;name&gt;</c>, type <c>at+jwt</c>,
    /// signed by a key in Fundament's JWKS (found through its discovery document at
    /// <see cref="FundamentClientOptions.Url"/>) and issued by it. A user's Fundament token, or one
    /// minted for another service, is refused. Claims keep their JWT names (<c>sub</c>, <c>name</c>,
    /// <c>roles</c>, <c>client_id</c>, <c>act</c>), and <c>roles</c> drives
    /// <c>User.IsInRole</c>. Settings come from <c>Fundament:Client</c> (<c>Url</c>, <c>Service</c>).
    /// </summary>
    /// <exception cref="InvalidOperationException"><c>Fundament:Client:Url</c> is missing.</exception>
    public static IHostApplicationBuilder AddFundamentAuthentication(this IHostApplicationBuilder builder, Action<JwtBearerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new FundamentClientOptions();
        builder.Configuration.GetSection(FundamentClientOptions.SectionName).Bind(options);
        var url = options.Url ?? throw new InvalidOperationException($"Fundament client settings missing: {FundamentClientOptions.SectionName}:Url.");
        var service = options.Service ?? FundamentClientExtensions.DefaultServiceName(builder.Environment.ApplicationName);
        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(jwt =>
        {
            jwt.Authority = url.ToString().TrimEnd('/');
            jwt.RequireHttpsMetadata = url.Scheme == Uri.UriSchemeHttps;
            jwt.MapInboundClaims = false;
            jwt.TokenValidationParameters = new TokenValidationParameters
            {
                ValidAudience = ServiceAudience(service),
                ValidTypes = ["at+jwt"],
                ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256],
                RequireSignedTokens = true,
                RequireExpirationTime = true,
                NameClaimType = "name",
                RoleClaimType = "roles",
                ClockSkew = TimeSpan.FromSeconds(30),
            };
            configure?.Invoke(jwt);
        });
        builder.Services.AddAuthorization();
        return builder;
    }
}
