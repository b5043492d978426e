using System.Diagnostics;
using Fundament.Jobs;
using Fundament.Media.Storage;

namespace Fundament.Media.Processing;

/// <summary>
/// Job <c>media.process</c>: metadata and derivatives for one asset, then <c>ready</c>, or
/// <c>failed</c> with a reason when the file is bad. Idempotent: a job run again after its worker
/// was killed redoes the work from the original, and every derivative is written atomically, so
/// none is ever half there.
/// </summary>
internal sealed partial class MediaProcessor(MediaStore store, MediaService media, ILogger<MediaProcessor> logger) : IJobHandler
{
    public string Type => MediaService.ProcessJob;

    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var assetId = job.Read<ProcessPayload>().AssetId;
        var asset = await store.GetAsync(assetId, cancellationToken);
        if (asset is null || asset.State is not (MediaState.Uploaded or MediaState.Processing))
        {
            return;
        }
        if (asset.State == MediaState.Uploaded)
        {
            await media.TransitionAsync(asset, [MediaState.Uploaded], MediaState.Processing, "system", $"processing (job {job.Id})", "media.process", null, cancellationToken,
                details: new Dictionary<string, string> { ["job"] = job.Id });
        }
        var work = Path.Combine(media.StagingFolder, "work-" + job.Id + "-" + job.Attempt);
        Directory.CreateDirectory(work);
        var started = Stopwatch.GetTimestamp();
        // What is known about the file before a step refuses it: kept on the failed asset, so a photo whose
        // pixels cannot be decoded still shows when and where it was taken.
        var known = new KnownMetadata();
        try
        {
            // Read in place on local disk (content files are never rewritten: same key, same bytes); copied from remote stores.
            var source = media.Stores.Hot.LocalPath(BlobKeys.Content(asset.Sha256)) ?? Path.Combine(work, "original");
            if (!File.Exists(source) && !await media.Stores.Hot.DownloadAsync(BlobKeys.Content(asset.Sha256), source, cancellationToken))
            {
                throw new MediaRejectedException("the original content is missing from storage");
            }
            await job.ReportProgressAsync(10, cancellationToken);
            var (metadata, derivatives) = await RenderAsync(asset, source, work, known, cancellationToken);
            await job.ReportProgressAsync(80, cancellationToken);
            foreach (var derivative in derivatives)
            {
                var key = BlobKeys.Derivative(asset.Id, derivative.Name + Path.GetExtension(derivative.Path));
                await media.Stores.Hot.PutFileAsync(key, derivative.Path, derivative.Mime, cancellationToken);
                await store.UpsertDerivativeAsync(asset.Id, new DerivativeRow
                {
                    Name = derivative.Name, BlobKey = key, Mime = derivative.Mime, Width = derivative.Width, Height = derivative.Height,
                    Size = new FileInfo(derivative.Path).Length,
                }, cancellationToken);
            }
            await store.SaveMetadataAsync(asset.Id, metadata, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, cancellationToken);
            if (await media.TransitionAsync(asset, [MediaState.Processing], MediaState.Ready, "system", "processed", "media.ready", MediaEvents.Ready, cancellationToken, new AssetTransition { ClearsFailure = true }))
            {
                await media.PublishAfterAsync(asset, MediaEvents.Ready, cancellationToken);
            }
        }
        catch (MediaRejectedException ex)
        {
            await FailAsync(asset, ex.Message, known.Value, started, cancellationToken);
            LogRejected(logger, asset.Id, ex.Message);
        }
        catch (Exception ex) when (ex is not OperationCanceledException && job.Attempt >= job.MaxAttempts)
        {
            await FailAsync(asset, $"processing failed after {job.Attempt} attempts: {ex.Message}", known.Value, started, cancellationToken);
            throw;
        }
        finally
        {
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task FailAsync(AssetRow asset, string reason, MediaMetadata? known, long started, CancellationToken cancellationToken)
    {
        await store.SaveMetadataAsync(asset.Id, known ?? new MediaMetadata(), (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, cancellationToken);
        if (await media.TransitionAsync(asset, [MediaState.Processing, MediaState.Uploaded], MediaState.Failed, "system", reason, "media.failed", MediaEvents.Failed, cancellationToken, new AssetTransition { Failure = reason }))
        {
            await media.PublishAfterAsync(asset, MediaEvents.Failed, cancellationToken);
        }
    }

    private async Task<(MediaMetadata Metadata, IReadOnlyList<RenderedDerivative> Derivatives)> RenderAsync(AssetRow asset, string source, string work, KnownMetadata known, CancellationToken cancellationToken)
    {
        var options = media.Options;
        switch (asset.Kind)
        {
            case MediaKind.Image:
            {
                // libvips is synchronous and CPU-bound: keep it off the async continuation threads' hot path.
                return await Task.Run(() =>
                {
                    (int Width, int Height) size;
                    try
                    {
                        size = ImageProcessor.CheckHeader(source, options.MaxPixels);
                    }
                    catch (MediaRejectedException)
                    {
                        known.Value = ImageProcessor.Metadata(source, null, null);
                        throw;
                    }
                    var metadata = known.Value = ImageProcessor.Metadata(source, size.Width, size.Height);
                    var warnings = new List<string>();
                    var thumbnails = ImageProcessor.Thumbnails(source, work, options.ThumbnailLarge, options.ThumbnailSmall, options.ThumbnailFormat, options.MaxPixels, warnings);
                    metadata.Warnings = warnings.Count > 0 ? warnings : null;
                    return (metadata, thumbnails);
                }, cancellationToken);
            }
            case MediaKind.Video:
            {
                var av = new AvProcessor(options);
                var metadata = known.Value = await av.ProbeAsync(source, cancellationToken);
                if (metadata.VideoCodec is null)
                {
                    // An audio-only MP4/WebM: treat like audio.
                    var wave = await av.WaveformAsync(source, work, cancellationToken);
                    return (metadata, [.. ImageProcessor.Thumbnails(wave, work, options.ThumbnailLarge, options.ThumbnailSmall, options.ThumbnailFormat, options.MaxPixels), new("waveform", wave, "image/png", null, null)]);
                }
                var poster = await av.PosterAsync(source, metadata, work, cancellationToken);
                var thumbs = ImageProcessor.Thumbnails(poster, work, options.ThumbnailLarge, options.ThumbnailSmall, options.ThumbnailFormat, options.MaxPixels);
                var preview = await av.PreviewAsync(source, work, cancellationToken);
                var large = thumbs.Single(t => t.Name == "thumb-large");
                return (metadata, [.. thumbs, large with { Name = "poster" }, preview]);
            }
            case MediaKind.Audio:
            {
                var av = new AvProcessor(options);
                var metadata = known.Value = await av.ProbeAsync(source, cancellationToken);
                if (metadata.AudioCodec is null)
                {
                    throw new MediaRejectedException("the file has no audio stream");
                }
                var wave = await av.WaveformAsync(source, work, cancellationToken);
                return (metadata, [.. ImageProcessor.Thumbnails(wave, work, options.ThumbnailLarge, options.ThumbnailSmall, options.ThumbnailFormat, options.MaxPixels), new("waveform", wave, "image/png", 1280, 320)]);
            }
            case MediaKind.Document:
            {
                var pdf = new PdfProcessor(options);
                var metadata = known.Value = await pdf.InfoAsync(source, cancellationToken);
                var page = await pdf.FirstPageAsync(source, work, options.ThumbnailLarge, cancellationToken);
                var thumbs = ImageProcessor.Thumbnails(page, work, options.ThumbnailLarge, options.ThumbnailSmall, options.ThumbnailFormat, options.MaxPixels);
                return (metadata, [.. thumbs, thumbs.Single(t => t.Name == "thumb-large") with { Name = "page1" }]);
            }
            default:
                throw new MediaRejectedException($"no processor for type {asset.Kind}");
        }
    }

    private sealed class KnownMetadata
    {
        public MediaMetadata? Value { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Asset {AssetId} failed processing: {Reason}")]
    private static partial void LogRejected(ILogger logger, string assetId, string reason);
}
