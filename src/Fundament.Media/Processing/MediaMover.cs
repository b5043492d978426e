using Fundament.Jobs;
using Fundament.Media.Storage;

namespace Fundament.Media.Processing;

/// <summary>
/// Job <c>media.move</c>: archives an asset (its original to the cold store) or restores it from
/// the archive. Idempotent: the copy is skipped when the target already holds the content, and an
/// asset that changed since the request (trashed, put under legal hold, already moved) is left alone.
/// </summary>
internal sealed partial class MediaMover(MediaStore store, MediaService media, ILogger<MediaMover> logger) : IJobHandler
{
    public string Type => MediaService.MoveJob;

    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var move = job.Read<MovePayload>();
        if (await store.GetAsync(move.AssetId, cancellationToken) is not { } asset)
        {
            return;
        }
        var result = move.To == MediaTier.Cold
            ? await media.ArchiveAsync(asset, move.Actor, move.Reason, cancellationToken)
            : asset.State == MediaState.Archived ? await media.RestoreAsync(asset, move.Actor, cancellationToken) : LifecycleResult.Conflict;
        if (result != LifecycleResult.Done)
        {
            LogSkipped(logger, asset.Id, move.To, asset.State, result);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Media {AssetId} not moved to {To}: it is {State} ({Result}) since the request")]
    private static partial void LogSkipped(ILogger logger, string assetId, string to, string state, LifecycleResult result);
}
