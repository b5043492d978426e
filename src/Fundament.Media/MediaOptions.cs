using Fundament.Media.Storage;

namespace Fundament.Media;

/// <summary>Section <c>Fundament:Media</c>.</summary>
public sealed class MediaOptions
{
    public const string SectionName = "Fundament:Media";

    /// <summary>Largest upload, multipart or tus. Default 4 GiB.</summary>
    public long MaxUploadBytes { get; set; } = 4L << 30;

    /// <summary>Largest image (width × height) that is decoded; larger ones fail as decompression bombs. Default 200 megapixels.</summary>
    public long MaxPixels { get; set; } = 200_000_000;

    /// <summary>Longest side of the small thumbnail. Default 256.</summary>
    public int ThumbnailSmall { get; set; } = 256;

    /// <summary>Longest side of the large thumbnail. Default 1280.</summary>
    public int ThumbnailLarge { get; set; } = 1280;

    /// <summary><c>webp</c> (default) or <c>jpeg</c>.</summary>
    public string ThumbnailFormat { get; set; } = "webp";

    /// <summary>How long a trashed asset can be restored before it is purged. Default 30 days.</summary>
    public TimeSpan TrashRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How long an unfinished tus upload is kept after its last write. Default 24h.</summary>
    public TimeSpan UploadExpiry { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Folder for tus uploads in progress and staging; relative to the data folder. Default <c>media/uploads</c>.</summary>
    public string UploadPath { get; set; } = "media/uploads";

    /// <summary>
    /// Where unfinished tus uploads keep their bytes: <c>local</c> (a part file in <see cref="UploadPath"/>
    /// of the node that received the upload), <c>store</c> (each chunk an object in the hot store, so
    /// any <c>media</c> replica continues any upload), or <c>auto</c> (default: <c>store</c> when the hot
    /// store is S3, else <c>local</c>).
    /// </summary>
    public string UploadParts { get; set; } = "auto";

    /// <summary>Wall-clock limit for one external tool run (ffprobe, ffmpeg, pdfinfo, pdftoppm). Default 2 minutes.</summary>
    public TimeSpan ToolTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Address-space limit for one external tool run. Default 2 GiB.</summary>
    public long ToolMemoryBytes { get; set; } = 2L << 30;

    /// <summary>How often lifecycle policies and the trash purge run. Default 1h.</summary>
    public TimeSpan PolicyInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Length of the video preview clip. Default 3s.</summary>
    public TimeSpan PreviewLength { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Hot store: originals of live assets and every derivative.</summary>
    public BlobStoreOptions Storage { get; set; } = new();

    /// <summary>Cold store: originals of archived assets.</summary>
    public BlobStoreOptions ColdStorage { get; set; } = new();

    /// <summary>Whether this node runs the lifecycle policies (media-worker nodes) and sweeps expired uploads (media nodes). Default true.</summary>
    public bool PolicyRunnerEnabled { get; set; } = true;
}

internal sealed class MediaOptionsValidator : SettingsValidator<MediaOptions>
{
    protected override string Section => MediaOptions.SectionName;

    protected override void Check(MediaOptions o, SettingsProblems problems)
    {
        problems.AtLeast(o.MaxUploadBytes, 1024);
        problems.AtLeast(o.MaxPixels, 1_000_000);
        problems.Between(o.ThumbnailSmall, 16, 4096);
        problems.Between(o.ThumbnailLarge, 16, 8192);
        problems.Require(o.ThumbnailSmall < o.ThumbnailLarge, o.ThumbnailLarge, "must be larger than ThumbnailSmall.");
        problems.OneOf(o.ThumbnailFormat, ["webp", "jpeg"]);
        problems.AtLeast(o.TrashRetention, TimeSpan.Zero);
        problems.AtLeast(o.UploadExpiry, TimeSpan.FromMinutes(1));
        problems.AtLeast(o.ToolTimeout, TimeSpan.FromSeconds(1));
        problems.Require(o.ToolMemoryBytes >= 64L << 20, o.ToolMemoryBytes, "must be at least 64 MiB.");
        problems.AtLeast(o.PolicyInterval, TimeSpan.FromSeconds(10));
        problems.OneOf(o.UploadParts, ["auto", "local", "store"]);
        problems.OneOf(o.Storage.Provider, ["local", "s3"]);
        problems.Require(o.Storage.Provider != "s3" || !string.IsNullOrWhiteSpace(o.Storage.S3.Bucket), o.Storage.S3.Bucket, "is required when Storage:Provider is s3.");
        problems.OneOf(o.ColdStorage.Provider, ["local", "s3"]);
        problems.Require(o.ColdStorage.Provider != "s3" || !string.IsNullOrWhiteSpace(o.ColdStorage.S3.Bucket), o.ColdStorage.S3.Bucket, "is required when ColdStorage:Provider is s3.");
    }
}
