using Fundament.Hosting;
using Fundament.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Fundament.Keys;

public static class KeysServiceCollectionExtensions
{
    /// <summary>Registers the master key ring and <see cref="EnvelopeEncryption"/>.</summary>
    public static IServiceCollection AddFundamentKeys(this IServiceCollection services)
    {
        services.TryAddSingleton(sp => new MasterKeyRing(MasterKeyLoader.Load(
            sp.GetRequiredService<IOptions<FundamentOptions>>().Value,
            sp.GetRequiredService<IOptions<StorageOptions>>().Value,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Fundament.Keys.MasterKey"))));
        services.TryAddSingleton<EnvelopeEncryption>();
        return services;
    }
}
