using System.Security.Cryptography;
using Fundament.Core.Quotas;
using Fundament.Jobs;
using Fundament.Media.Storage;

namespace Fundament.Media;

/// <summary>Ingest and lifecycle: what the API, tus, the processor and the policy runner share.</summary>
internal sealed partial class MediaService(
    Fundament.Core.Storage.IDatabase database, MediaStore store, MediaBlobStores stores, IJobQueue jobs, IEventPublisher events, IAuditLog audit, Fundament.Core.Storage.LeaseStore leases, IQuotas quotas,
    IOptions<MediaOptions> options, IOptions<FundamentOptions> fundament, TimeProvider time, ILogger<MediaService> logger)
{
    /// <summary>
    /// How long a content lock lasts if its holder dies. Holders keep it for seconds, but the rare
    /// re-copy under it (an object deleted between the copy and the lock) can take minutes.
    /// </summary>
    private static readonly TimeSpan ContentLockLease = TimeSpan.FromMinutes(10);

    /// <summary>How long a request or job waits for another holder of a content lock before giving up (503, or a job retry).</summary>
    private static readonly TimeSpan ContentLockWait = TimeSpan.FromSeconds(60);

    public const string ProcessJob = "media.process";

    /// <summary>Job that moves an original between the hot and the cold store (archive, restore from the archive).</summary>
    public const string MoveJob = "media.move";

    public MediaOptions Options => options.Value;

    public MediaBlobStores Stores => stores;

    public string UploadFolder => Path.Combine(fundament.Value.FullDataDir, options.Value.UploadPath);

    public string StagingFolder
    {
        get
        {
            var folder = Path.Combine(UploadFolder, "staging");
            Directory.CreateDirectory(folder);
            return folder;
        }
    }

    /// <summary>
    /// Streams <paramref name="content"/> to a staging file while hashing it; nothing is held in
    /// memory beyond one buffer. Throws <see cref="UploadTooLargeException"/> past the limit.
    /// </summary>
    /// <remarks>
    /// <paramref name="budget"/>, when given, is what the uploader's storedBytes quota has left:
    /// past it the upload stops at once with <see cref="QuotaExceededException"/> (413), before the
    /// rest of the body is read.
    /// </remarks>
    public async Task<StagedContent> StageAsync(Stream content, CancellationToken cancellationToken, QuotaBudget? budget = null)
    {
        var path = Path.Combine(StagingFolder, Guid.NewGuid().ToString("N"));
        var head = new byte[ContentSniffer.HeaderLength];
        var headLength = 0;
        long size = 0;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            int read;
            while ((read = await content.ReadAsync(buffer.AsMemory(0, 1 << 16), cancellationToken)) > 0)
            {
                size += read;
                if (size > options.Value.MaxUploadBytes)
                {
                    throw new UploadTooLargeException(options.Value.MaxUploadBytes);
                }
                if (budget is not null && size > budget.Remaining)
                {
                    throw budget.Exceeded(size);
                }
                if (headLength < head.Length)
                {
                    var take = Math.Min(read, head.Length - headLength);
                    buffer.AsSpan(0, take).CopyTo(head.AsSpan(headLength));
                    headLength += take;
                }
                hash.AppendData(buffer, 0, read);
                await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }
        catch
        {
            TryDelete(path);
            throw;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        return new StagedContent(path, Convert.ToHexStringLower(hash.GetHashAndReset()), size, ContentSniffer.Sniff(head.AsSpan(0, headLength)));
    }

    /// <summary>
    /// Hashes and sniffs a finished file in place (a tus upload's part file). It stays where it is
    /// (<see cref="StagedContent.Keep"/>): admission copies it to the store, and its owner deletes
    /// it only once the asset exists, so a failed admission loses nothing.
    /// </summary>
    public async Task<StagedContent> SniffFileAsync(string path, CancellationToken cancellationToken)
    {
        string sha;
        long size;
        var head = new byte[ContentSniffer.HeaderLength];
        int headLength;
        await using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan))
        {
            headLength = await file.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken);
            file.Position = 0;
            sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken));
            size = file.Length;
        }
        return new StagedContent(path, sha, size, ContentSniffer.Sniff(head.AsSpan(0, headLength))) { Keep = true };
    }

    /// <summary>
    /// Turns a staged file into an asset: the content goes to the hot store under its hash (once,
    /// whoever uploads it), the asset row is written, and a processing job is queued. The same
    /// owner uploading the same content gets the existing asset back.
    /// </summary>
    /// <remarks>
    /// <paramref name="quota"/> is whom the new asset counts against (storedBytes, assets,
    /// queuedJobs), checked before the content is stored and again, atomically, with the asset's
    /// row; going over throws <see cref="QuotaExceededException"/> and leaves nothing behind.
    /// <paramref name="bytesReserved"/>: the bytes were already counted (a tus upload reserves its
    /// length when it is created).
    /// </remarks>
    public async Task<(AssetRow Asset, bool Created)> AdmitAsync(StagedContent staged, string owner, string? actor, string? filename, string? title, IReadOnlyList<string> tags,
        QuotaSubject? quota, bool bytesReserved, CancellationToken cancellationToken)
    {
        try
        {
            if (staged.Type is not { } type)
            {
                throw new UnsupportedMediaException();
            }
            if (await store.FindByContentAsync(owner, staged.Sha256, cancellationToken) is { } existing)
            {
                return (existing, false);
            }
            // Refused before anything is stored; checked again below, where it holds.
            await EnsureAdmissionAsync(quota, staged.Size, bytesReserved, cancellationToken);
            var key = BlobKeys.Content(staged.Sha256);
            // The long put outside the content lock (the key is the content, so a second writer writes the same bytes).
            if (await stores.Hot.SizeAsync(key, cancellationToken) != staged.Size)
            {
                await stores.Hot.PutFileAsync(key, staged.Path, type.Mime, cancellationToken);
            }
            AssetRow asset;
            bool created;
            await using (await LockContentAsync(staged.Sha256, cancellationToken))
            {
                // Under the lock nothing deletes the object: check it is (still) there, then add this asset as a user of it.
                if (await stores.Hot.SizeAsync(key, cancellationToken) != staged.Size)
                {
                    await stores.Hot.PutFileAsync(key, staged.Path, type.Mime, cancellationToken);
                }
                // The quota check, the asset, its processing job and the audit entry: all or nothing.
                try
                {
                    (asset, created) = await database.InUnitOfWorkAsync(async () =>
                    {
                        await EnsureAdmissionAsync(quota, staged.Size, bytesReserved, cancellationToken);
                        return await CreateAssetAsync(staged, type, owner, actor, filename, title, tags, cancellationToken);
                    }, cancellationToken);
                }
                catch (QuotaExceededException)
                {
                    // Still under the content lock: the object put above goes again unless another asset uses it.
                    await DeleteContentIfUnusedAsync(staged.Sha256, MediaTier.Hot, CancellationToken.None);
                    throw;
                }
            }
            return (asset, created);
        }
        finally
        {
            Discard(staged);
        }
    }

    private async Task EnsureAdmissionAsync(QuotaSubject? quota, long size, bool bytesReserved, CancellationToken cancellationToken)
    {
        if (quota is null)
        {
            return;
        }
        if (!bytesReserved)
        {
            await quotas.EnsureAsync(quota, Quota.StoredBytes, size, cancellationToken);
        }
        await quotas.EnsureAsync(quota, Quota.Assets, 1, cancellationToken);
        await quotas.EnsureAsync(quota, Quota.QueuedJobs, 1, cancellationToken);
    }

    private async Task<(AssetRow Asset, bool Created)> CreateAssetAsync(
        StagedContent staged, SniffedType type, string owner, string? actor, string? filename, string? title, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        var (asset, created) = await store.CreateOrGetAsync(new NewAsset(owner, staged.Sha256, staged.Size, type.Kind, type.Mime, FileNames.Sanitize(filename), title, tags), actor, cancellationToken);
        if (created)
        {
            await jobs.EnqueueAsync(JobRequest.Of(ProcessJob, new ProcessPayload(asset.Id), idempotencyKey: $"{ProcessJob}:{asset.Id}") with { Owner = owner }, cancellationToken);
            await audit.AppendAsync(new AuditEvent("media.upload", AuditOutcome.Success)
            {
                Actor = actor ?? owner,
                Target = $"media:{asset.Id}",
                Details = new Dictionary<string, string> { ["sha256"] = staged.Sha256, ["type"] = type.Mime, ["size"] = staged.Size.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            }, cancellationToken);
        }
        return (asset, created);
    }

    /// <summary>What <paramref name="quota"/> has left of its storedBytes quota, or null when it is unlimited.</summary>
    public async Task<QuotaBudget?> StorageBudgetAsync(QuotaSubject quota, CancellationToken cancellationToken)
    {
        var state = await quotas.StateAsync(quota, Quota.StoredBytes, cancellationToken);
        return state.Limit is { } max ? new QuotaBudget(max, state.Used, state.Source) : null;
    }

    /// <summary>Deletes a staging file, unless it belongs to someone else (<see cref="StagedContent.Keep"/>).</summary>
    public void Discard(StagedContent staged)
    {
        if (!staged.Keep)
        {
            TryDelete(staged.Path);
        }
    }

    /// <summary>Moves to the trash (restorable for the retention). Legal hold refuses.</summary>
    public async Task<LifecycleResult> TrashAsync(AssetRow asset, string actor, string reason, CancellationToken cancellationToken)
    {
        if (asset.LegalHold)
        {
            return LifecycleResult.Held;
        }
        if (asset.State == MediaState.Trashed)
        {
            return LifecycleResult.Done;
        }
        var from = MediaState.All.Where(s => s != MediaState.Trashed).ToList();
        if (!await TransitionAsync(asset, from, MediaState.Trashed, actor, reason, "media.trash", MediaEvents.Trashed, cancellationToken))
        {
            return LifecycleResult.Conflict;
        }
        await PublishAfterAsync(asset, MediaEvents.Trashed, cancellationToken);
        return LifecycleResult.Done;
    }

    /// <summary>From the trash back to the state it had; from the archive back to ready (the original returns to the hot store).</summary>
    public async Task<LifecycleResult> RestoreAsync(AssetRow asset, string actor, CancellationToken cancellationToken)
    {
        if (asset.State == MediaState.Trashed)
        {
            var back = asset.PreviousState is { } p && p != MediaState.Trashed ? p : MediaState.Ready;
            if (!await TransitionAsync(asset, [MediaState.Trashed], back, actor, "restored from trash", "media.restore", MediaEvents.Restored, cancellationToken))
            {
                return LifecycleResult.Conflict;
            }
            await PublishAfterAsync(asset, MediaEvents.Restored, cancellationToken);
            return LifecycleResult.Done;
        }
        if (asset.State == MediaState.Archived)
        {
            if (!await MoveContentAsync(asset, MediaState.Archived, MediaState.Ready, MediaTier.Cold, MediaTier.Hot, actor, "restored from archive", "media.restore", MediaEvents.Restored, cancellationToken))
            {
                return LifecycleResult.Conflict;
            }
            await PublishAfterAsync(asset, MediaEvents.Restored, cancellationToken);
            return LifecycleResult.Done;
        }
        return LifecycleResult.Conflict;
    }

    /// <summary>
    /// Queues archiving (to <see cref="MediaTier.Cold"/>) or restoring from the archive (to
    /// <see cref="MediaTier.Hot"/>): copying a large original between stores belongs in a worker
    /// (retried, surviving a crash, never cut off by a client or gateway timeout), not in a request.
    /// Checked now, so a held or wrong-state asset is refused at once; checked again by the worker.
    /// </summary>
    /// <remarks>A person's request (<paramref name="requester"/>) counts against its queuedJobs quota; the policy runner's do not.</remarks>
    public async Task<LifecycleResult> RequestMoveAsync(AssetRow asset, string to, string actor, string reason, CancellationToken cancellationToken, bool reviveDead = true, QuotaSubject? requester = null)
    {
        if (to == MediaTier.Cold && asset.LegalHold)
        {
            return LifecycleResult.Held;
        }
        if (asset.State != (to == MediaTier.Cold ? MediaState.Ready : MediaState.Archived))
        {
            return LifecycleResult.Conflict;
        }
        // One job per asset, target and asset version: asking twice queues once; after a round trip a new one.
        // A dead one (the store was down for all its attempts) is tried again by a person asking
        // again; the policy runner does not revive it every interval.
        var job = JobRequest.Of(MoveJob, new MovePayload(asset.Id, to, actor, reason), idempotencyKey: $"{MoveJob}:{asset.Id}:{to}:{asset.UpdatedAt}") with { ReviveDead = reviveDead, Owner = requester?.Actor };
        if (requester is null)
        {
            await jobs.EnqueueAsync(job, cancellationToken);
        }
        else
        {
            await database.InUnitOfWorkAsync(async () =>
            {
                await quotas.EnsureAsync(requester, Quota.QueuedJobs, 1, cancellationToken);
                return await jobs.EnqueueAsync(job, cancellationToken);
            }, cancellationToken);
        }
        return LifecycleResult.Accepted;
    }

    /// <summary>Ready → archived: the original moves to the cold store; derivatives stay hot so browsing still works.</summary>
    public async Task<LifecycleResult> ArchiveAsync(AssetRow asset, string actor, string reason, CancellationToken cancellationToken)
    {
        if (asset.LegalHold)
        {
            return LifecycleResult.Held;
        }
        if (asset.State != MediaState.Ready)
        {
            return LifecycleResult.Conflict;
        }
        if (!await MoveContentAsync(asset, MediaState.Ready, MediaState.Archived, MediaTier.Hot, MediaTier.Cold, actor, reason, "media.archive", MediaEvents.Archived, cancellationToken))
        {
            return LifecycleResult.Conflict;
        }
        await PublishAfterAsync(asset, MediaEvents.Archived, cancellationToken);
        return LifecycleResult.Done;
    }

    /// <summary>
    /// Trashed → gone: derivatives, the row and (when no other asset uses it) the content. The
    /// event goes out first: after the row is deleted nothing would remember to send it.
    /// </summary>
    public async Task<LifecycleResult> PurgeAsync(AssetRow asset, string actor, CancellationToken cancellationToken)
    {
        if (asset.LegalHold)
        {
            return LifecycleResult.Held;
        }
        if (asset.State != MediaState.Trashed)
        {
            return LifecycleResult.Conflict;
        }
        var derivatives = await store.DerivativesAsync(asset.Id, cancellationToken);
        await PublishAfterAsync(asset, MediaEvents.Purged, cancellationToken, stateAfter: "purged");
        await using (await LockContentAsync(asset.Sha256, cancellationToken))
        {
            if (!await database.AuditedAsync(audit, () => store.DeleteTrashedAsync(asset.Id, cancellationToken),
                    deleted => deleted ? Entry(asset, "media.purge", actor, "trash retention ended") : null, cancellationToken))
            {
                return LifecycleResult.Conflict;
            }
            await DeleteContentIfUnusedAsync(asset.Sha256, asset.Tier, cancellationToken);
        }
        foreach (var derivative in derivatives)
        {
            await stores.Hot.DeleteAsync(derivative.BlobKey, cancellationToken);
        }
        return LifecycleResult.Done;
    }

    /// <summary>
    /// Moves an asset's original between stores with its state change. Copy first (outside the
    /// content lock: it can take minutes, and writing a content-addressed key twice is harmless),
    /// then, under the lock, make sure the copy is there, switch the tier in the transition, and
    /// delete the source if no other asset uses it there. A crash in between leaves a spare copy,
    /// never none; the lock keeps assets sharing this content from deleting what another just chose.
    /// </summary>
    private async Task<bool> MoveContentAsync(
        AssetRow asset, string fromState, string toState, string from, string to, string actor, string reason, string action, string eventName, CancellationToken cancellationToken)
    {
        await CopyContentAsync(asset, from, to, cancellationToken);
        await using (await LockContentAsync(asset.Sha256, cancellationToken))
        {
            await CopyContentAsync(asset, from, to, cancellationToken);
            if (!await TransitionAsync(asset, [fromState], toState, actor, reason, action, eventName, cancellationToken, new AssetTransition { Tier = to }))
            {
                // The asset changed meanwhile: the copy made for it is not needed unless another asset uses it there.
                await DeleteContentIfUnusedAsync(asset.Sha256, to, cancellationToken);
                return false;
            }
            await DeleteContentIfUnusedAsync(asset.Sha256, from, cancellationToken);
        }
        return true;
    }

    private async Task CopyContentAsync(AssetRow asset, string from, string to, CancellationToken cancellationToken)
    {
        var key = BlobKeys.Content(asset.Sha256);
        if (await stores.Of(to).SizeAsync(key, cancellationToken) == asset.Size)
        {
            return;
        }
        await using var source = await stores.Of(from).OpenReadAsync(key, 0, null, cancellationToken)
            ?? throw new InvalidOperationException($"the content of asset {asset.Id} is missing from the {from} store");
        await stores.Of(to).PutAsync(key, source, asset.Mime, cancellationToken);
    }

    /// <summary>
    /// Serializes what changes who uses one content object (admission, moves, purge), across every
    /// replica, through a short lease in the database. Waits for a holder (they keep it for seconds).
    /// </summary>
    private async Task<IAsyncDisposable> LockContentAsync(string sha256, CancellationToken cancellationToken)
    {
        var name = "media-content:" + sha256;
        var owner = leases.NewLockOwner();
        var deadline = DateTime.UtcNow + ContentLockWait;
        while (!await leases.TryAcquireAsync(name, owner, ContentLockLease, cancellationToken))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Fundament.Core.Http.TemporarilyUnavailableException("Another change to the same content is in progress; try again shortly.", TimeSpan.FromSeconds(30));
            }
            // Real time on purpose: this waits for another process, not for the (possibly fake) clock.
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
        }
        return new ContentLock(() => leases.ReleaseAsync(name, owner, CancellationToken.None));
    }

    private sealed class ContentLock(Func<Task> release) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await release();
    }

    private async Task DeleteContentIfUnusedAsync(string sha256, string tier, CancellationToken cancellationToken)
    {
        if (await store.ContentUsersAsync(sha256, tier, cancellationToken) == 0)
        {
            await stores.Of(tier).DeleteAsync(BlobKeys.Content(sha256), cancellationToken);
        }
    }

    /// <summary>
    /// A state change with its history row, its pending event (<paramref name="eventName"/>) and its
    /// audit entry (<paramref name="action"/>), in one unit of work: all or nothing.
    /// </summary>
    public Task<bool> TransitionAsync(
        AssetRow asset, IReadOnlyCollection<string> from, string to, string actor, string? reason, string action, string? eventName, CancellationToken cancellationToken,
        AssetTransition? changes = null, IReadOnlyDictionary<string, string>? details = null) =>
        database.AuditedAsync(audit,
            () => store.TransitionAsync(asset.Id, from, to, actor, reason, cancellationToken, (changes ?? new AssetTransition()) with { PendingEvent = eventName }),
            changed => changed ? Entry(asset, action, actor, reason, details) : null, cancellationToken);

    private static AuditEvent Entry(AssetRow asset, string action, string actor, string? reason, IReadOnlyDictionary<string, string>? details = null)
    {
        var all = new Dictionary<string, string>(details ?? new Dictionary<string, string>());
        if (reason is not null)
        {
            all["reason"] = reason;
        }
        return new AuditEvent(action, AuditOutcome.Success) { Actor = actor, Target = $"media:{asset.Id}", Details = all.Count == 0 ? null : all };
    }

    /// <summary>
    /// After a transition has committed: the event to webhook subscribers. The transition stored
    /// it as the asset's <c>pending_event</c>; it is cleared once the deliveries are queued, and
    /// <see cref="PublishPendingAsync"/> sends whatever a crash left pending (at least once).
    /// </summary>
    public async Task PublishAfterAsync(AssetRow asset, string eventName, CancellationToken cancellationToken, string? stateAfter = null)
    {
        try
        {
            await PublishAsync(asset.Id, eventName, stateAfter, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Still pending on the row: the next sweep sends it.
            LogPublishFailed(logger, eventName, asset.Id, ex);
        }
    }

    private async Task PublishAsync(string assetId, string eventName, string? stateAfter, CancellationToken cancellationToken)
    {
        var current = await store.GetAsync(assetId, cancellationToken);
        if (current is null)
        {
            return;
        }
        await events.PublishAsync(eventName, current.Owner, new
        {
            id = current.Id,
            sha256 = current.Sha256,
            type = current.Kind,
            state = stateAfter ?? current.State,
            failureReason = current.FailureReason,
            at = time.GetUtcNow(),
        }, cancellationToken);
        await store.ClearPendingEventAsync(assetId, eventName, cancellationToken);
    }

    /// <summary>Sends events whose transition committed but whose publishing did not finish (a crash, a database blip).</summary>
    public async Task<int> PublishPendingAsync(TimeSpan olderThan, CancellationToken cancellationToken)
    {
        var pending = await store.PendingEventsAsync(time.GetUtcNow() - olderThan, 500, cancellationToken);
        foreach (var (id, eventName) in pending)
        {
            await PublishAsync(id, eventName, null, cancellationToken);
        }
        return pending.Count;
    }

    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Publishing {Event} for asset {AssetId} failed")]
    private static partial void LogPublishFailed(ILogger logger, string @event, string assetId, Exception exception);
}

/// <summary>How many more bytes a principal may store: its storedBytes limit less what it uses.</summary>
internal sealed record QuotaBudget(long Limit, long Used, string Source)
{
    public long Remaining => Math.Max(0, Limit - Used);

    public QuotaExceededException Exceeded(long requested) => new(Quota.StoredBytes, Limit, Used, requested, Source);
}

internal sealed record StagedContent(string Path, string Sha256, long Size, SniffedType? Type)
{
    /// <summary>The file is not ours to delete (a tus part file that stays until the asset exists).</summary>
    public bool Keep { get; init; }
}

internal sealed record ProcessPayload(string AssetId);

internal sealed record MovePayload(string AssetId, string To, string Actor, string Reason);

internal enum LifecycleResult
{
    Done,
    Held,
    Conflict,

    /// <summary>Queued: a worker will do it (moving an original between stores can take minutes).</summary>
    Accepted,
}

internal sealed class UploadTooLargeException(long limit) : Exception($"The upload is larger than the limit of {limit} bytes (Fundament:Media:MaxUploadBytes).")
{
    public long Limit { get; } = limit;
}

internal sealed class UnsupportedMediaException() : Exception("The content is not a supported image, video, audio or PDF file.");
