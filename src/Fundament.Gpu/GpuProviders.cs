using Fundament.Gpu.Providers;

namespace Fundament.Gpu;

/// <summary>The configured providers' adapters, each reaching its configured base URL with the key from the vault.</summary>
internal sealed class GpuProviders(IOptions<GpuOptions> options, IHttpClientFactory clients, IServiceProvider services, TimeProvider time)
{
    // Built once: an adapter keeps state a provider's limits need (Lambda's last launch time).
    private readonly Lock _gate = new();
    private IReadOnlyDictionary<string, IGpuProvider>? _all;

    public const string HttpClientName = "fundament-gpu";

    private static readonly Dictionary<string, string> PublicApis = new(StringComparer.Ordinal)
    {
        ["vast"] = "https://console.vast.ai/",
        ["lambda"] = "https://cloud.lambda.ai/",
        ["runpod"] = "https://api.runpod.io/",
    };

    public IReadOnlyDictionary<string, IGpuProvider> All()
    {
        lock (_gate)
        {
            return _all ??= options.Value.Providers.Where(p => p.Value.Enabled)
                .ToDictionary(p => p.Key.ToLowerInvariant(), p => Create(p.Key.ToLowerInvariant(), p.Value), StringComparer.OrdinalIgnoreCase);
        }
    }

    private IGpuProvider Create(string name, GpuProviderOptions provider)
    {
        var type = name;
        var baseUrl = new Uri((provider.BaseUrl ?? PublicApis[type]).TrimEnd('/') + "/");
        var connection = new GpuProviderConnection(baseUrl, async ct =>
            await (services.GetService<IPlatformSecrets>() ?? throw new InvalidOperationException("GPU providers need the vault module for their keys"))
                .ReadAsync(provider.ApiKeySecret!, ct)
            ?? throw new Fundament.Gpu.Placement.GpuLaunchException(Fundament.Gpu.Placement.LaunchFailure.Auth, $"the vault has no readable key for provider {name}"));
        var http = clients.CreateClient(HttpClientName);
        return type switch
        {
            "vast" => new VastAiProvider(http, connection, time),
            "lambda" => new LambdaCloudProvider(http, connection, time, provider.SshKeyNames),
            _ => new RunPodProvider(http, connection, time, provider.Image),
        };
    }
}
