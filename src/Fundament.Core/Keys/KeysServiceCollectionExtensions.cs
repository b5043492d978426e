namespace Fundament.Core.Keys;

public static class KeysServiceCollectionExtensions
{
    /// <summary>Registers the master key ring and <see cref="EnvelopeEncryption"/>.</summary>
    public static IServiceCollection AddFundamentKeys(this IServiceCollection services)
    {
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<FundamentOptions>>().Value;
            var current = MasterKeyLoader.Load(options, sp.GetRequiredService<IOptions<StorageOptions>>().Value,
                sp.GetRequiredService<ILoggerFactory>().CreateLogger("Fundament.Keys.MasterKey"));
            return new MasterKeyRing(current, MasterKeyLoader.LoadPrevious(options));
        });
        services.TryAddSingleton<EnvelopeEncryption>();
        services.TryAddSingleton<MasterKeyCheck>();
        return services;
    }
}
