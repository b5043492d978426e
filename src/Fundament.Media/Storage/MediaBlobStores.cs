namespace Fundament.Media.Storage;

/// <summary>The two stores media uses: hot (originals of live assets, all derivatives) and cold (originals of archived assets).</summary>
public sealed class MediaBlobStores : IDisposable
{
    public MediaBlobStores(IOptions<MediaOptions> media, IOptions<FundamentOptions> fundament)
    {
        Hot = Create(media.Value.Storage, Path.Combine(fundament.Value.FullDataDir, "media", "hot"));
        Cold = Create(media.Value.ColdStorage, Path.Combine(fundament.Value.FullDataDir, "media", "cold"));
    }

    public IBlobStore Hot { get; }

    public IBlobStore Cold { get; }

    public IBlobStore Of(string tier) => tier == MediaTier.Cold ? Cold : Hot;

    public static IBlobStore Create(BlobStoreOptions options, string defaultPath) => options.Provider switch
    {
        "s3" => new S3BlobStore(options.S3),
        _ => new LocalBlobStore(string.IsNullOrWhiteSpace(options.Path) ? defaultPath : Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(defaultPath))!, options.Path)),
    };

    public void Dispose()
    {
        (Hot as IDisposable)?.Dispose();
        (Cold as IDisposable)?.Dispose();
    }
}

public static class MediaTier
{
    public const string Hot = "hot";
    public const string Cold = "cold";
}
