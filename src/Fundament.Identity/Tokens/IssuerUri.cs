namespace Fundament.Identity.Tokens;

/// <summary>The <c>iss</c> value: configured, or the first URL the server listens on.</summary>
internal sealed class IssuerUri(IOptions<IdentityOptions> options, IConfiguration configuration)
{
    public string Value { get; } = (options.Value.Issuer
        ?? configuration["urls"]?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault()
        ?? "http://localhost:5080").TrimEnd('/');
}
