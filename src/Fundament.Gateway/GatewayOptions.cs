namespace Fundament.Gateway;

/// <summary>Section <c>Fundament:Gateway</c>.</summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Fundament:Gateway";

    /// <summary>Where the gateway listens (semicolon-separated), apart from the API. Default <c>http://localhost:8080</c>.</summary>
    public string Urls { get; set; } = "http://localhost:8080";

    /// <summary>Default upstream timeout for routes that set none. Default 30s.</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Consecutive failures after which a destination is taken out (passive health). Default 5.</summary>
    public int FailureThreshold { get; set; } = 5;

    /// <summary>How long an ejected destination stays out. Default 30s.</summary>
    public TimeSpan ReactivationPeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The ports of <see cref="Urls"/>; requests arriving on them go to the gateway.</summary>
    public IReadOnlySet<int> Ports() =>
        Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(u => Uri.TryCreate(u.Replace("://+", "://localhost", StringComparison.Ordinal).Replace("://*", "://localhost", StringComparison.Ordinal), UriKind.Absolute, out var uri) ? uri.Port : -1)
            .Where(p => p > 0)
            .ToHashSet();
}
