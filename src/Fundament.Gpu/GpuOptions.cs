namespace Fundament.Gpu;

/// <summary>Settings for GPU orchestration, section <c>Fundament:Gpu</c>: the providers an operator enabled.</summary>
public sealed class GpuOptions
{
    public const string SectionName = "Fundament:Gpu";

    /// <summary>Providers by name: <c>vast</c>, <c>lambda</c>, <c>runpod</c>. None: no offers, no pool can place.</summary>
    public Dictionary<string, GpuProviderOptions> Providers { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>How long a placement assumes a worker runs when it checks the budget (the forecast). Default 1 hour.</summary>
    public TimeSpan ForecastWindow { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// What a launched machine runs at boot (user data, a container's start command); <c>{pool}</c> is
    /// replaced by the pool's name. It should start a worker that pulls the pool's job types.
    /// </summary>
    public string StartupScript { get; set; } = "#!/bin/sh\nexec fundament --roles media-worker\n";
}

public sealed class GpuProviderOptions
{
    /// <summary>The API's base URL. Defaults to the provider's public API (https://console.vast.ai/, https://cloud.lambda.ai/, https://api.runpod.io/).</summary>
    public string? BaseUrl { get; set; }

    /// <summary>Vault path whose current value is the API key. Required.</summary>
    public string? ApiKeySecret { get; set; }

    /// <summary>The container image GPU workers run (Vast.ai, RunPod). Default <c>fundament/gpu-worker:latest</c>.</summary>
    public string Image { get; set; } = "fundament/gpu-worker:latest";

    /// <summary>SSH key names to put on Lambda instances.</summary>
    public List<string> SshKeyNames { get; set; } = [];

    public bool Enabled { get; set; } = true;
}

internal sealed class GpuOptionsValidator : SettingsValidator<GpuOptions>
{
    protected override string Section => GpuOptions.SectionName;

    protected override void Check(GpuOptions o, SettingsProblems problems)
    {
        problems.Positive(o.ForecastWindow);
        foreach (var (name, provider) in o.Providers)
        {
            problems.Require(name is "vast" or "lambda" or "runpod", name, "is not a provider Fundament has an adapter for (vast, lambda, runpod).", $"o.Providers.{name}");
            problems.Require(!string.IsNullOrWhiteSpace(provider.ApiKeySecret), provider.ApiKeySecret, "is required (a vault path).", $"o.Providers.{name}.ApiKeySecret");
            if (provider.BaseUrl is not null)
            {
                problems.Require(Uri.TryCreate(provider.BaseUrl, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https", provider.BaseUrl, "must be an http(s) URL.", $"o.Providers.{name}.BaseUrl");
            }
        }
    }
}
