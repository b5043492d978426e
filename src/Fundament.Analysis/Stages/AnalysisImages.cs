using Fundament.Media;
using NetVips;

namespace Fundament.Analysis.Stages;

/// <summary>
/// The picture the stages look at: the asset's large thumbnail (already upright, already decoded
/// once; for a video its poster, for a PDF its first page), re-encoded at the size a stage asks for.
/// Audio has no picture worth analysing.
/// </summary>
internal sealed class AnalysisImages(MediaStore media, MediaService service)
{
    private const long MaxThumbnailBytes = 32L << 20;

    /// <summary>The picture as <paramref name="format"/> (<c>.png</c>, <c>.jpg</c>), longest side at most <paramref name="maxSide"/>.</summary>
    public async Task<byte[]> LoadAsync(AssetRow asset, int maxSide, string format, CancellationToken cancellationToken)
    {
        if (asset.Kind == MediaKind.Audio)
        {
            throw new StageSkippedException("audio has no picture to analyse");
        }
        var derivatives = await media.DerivativesAsync(asset.Id, cancellationToken);
        var picture = derivatives.FirstOrDefault(d => d.Name == "thumb-large") ?? throw new StageSkippedException("the asset has no thumbnail to analyse");
        if (picture.Size > MaxThumbnailBytes)
        {
            throw new StageFailedException($"the thumbnail is {picture.Size} bytes, more than a thumbnail should be");
        }
        await using var stream = await service.Stores.Hot.OpenReadAsync(picture.BlobKey, 0, null, cancellationToken)
            ?? throw new InvalidOperationException($"the thumbnail {picture.BlobKey} is not in the hot store");
        using var buffer = new MemoryStream((int)picture.Size);
        await stream.CopyToAsync(buffer, cancellationToken);
        return Encode(buffer.ToArray(), maxSide, format);
    }

    internal static byte[] Encode(byte[] image, int maxSide, string format)
    {
        using var resized = Image.ThumbnailBuffer(image, maxSide, height: maxSide, size: Enums.Size.Down);
        using var flat = resized.HasAlpha() ? resized.Flatten(background: [255, 255, 255]) : resized.Copy();
        using var srgb = flat.Interpretation == Enums.Interpretation.Srgb || flat.Bands < 3 ? flat.Copy() : flat.Colourspace(Enums.Interpretation.Srgb);
        return format == ".png" ? srgb.PngsaveBuffer(compression: 1) : srgb.JpegsaveBuffer(q: 88, keep: Enums.ForeignKeep.None);
    }
}
