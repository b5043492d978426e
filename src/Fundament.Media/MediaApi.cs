using Fundament.Core.Quotas;
using Fundament.Media.Storage;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Fundament.Media;

internal static class MediaApi
{
    public const int MaxTags = 50;
    public const int MaxTagLength = 64;
    public const int MaxTitleLength = 200;

    public static RouteGroupBuilder MapMediaApi(this IEndpointRouteBuilder endpoints, long maxUpload)
    {
        var group = endpoints.MapGroup("/api/v1/media").WithTags("Media").RequireAuthorization(Policies.Authenticated);
        group.MapPost("", UploadAsync).RequireAuthorization(MediaPermissions.Own)
            .WithMetadata(new UploadSizeLimit(maxUpload + (1 << 20))).DisableAntiforgery()
            .WithName("UploadMedia").WithSummary("Uploads one file (multipart field `file`; optional `title` and `tags`, comma-separated or repeated). The same content again returns the existing asset (200).");
        group.MapGet("", ListAsync).WithName("ListMedia").WithSummary("Assets the caller may see, newest first, with filters and a cursor (next).");
        group.MapGet("/stats", StatsAsync).WithName("MediaStats").WithSummary("Counts and bytes by type and state, processing time p50/p95 and failure rate (the caller's own, or all for admins).");
        group.MapGet("/{id}", GetAsync).WithName("GetMedia").WithSummary("One asset: state, normalized metadata with raw tags, derivatives and history.");
        group.MapMethods("/{id}/content", ["GET", "HEAD"], ContentAsync).WithName("GetMediaContent").WithSummary("The original bytes, with Range and ETag.");
        group.MapGet("/{id}/thumbnail", ThumbnailAsync).WithName("GetMediaThumbnail").WithSummary("The small (default) or large thumbnail.");
        group.MapMethods("/{id}/derivatives/{name}", ["GET", "HEAD"], DerivativeAsync).WithName("GetMediaDerivative").WithSummary("A derivative: thumb-small, thumb-large, poster, preview, waveform or page1.");
        group.MapPatch("/{id}", PatchAsync).WithName("PatchMedia").WithSummary("Changes title, tags, legal hold or who it is shared with.");
        group.MapDelete("/{id}", TrashAsync).WithName("TrashMedia").WithSummary("Moves the asset to the trash (restorable until the retention ends). 423 under legal hold.");
        group.MapPost("/{id}/restore", RestoreAsync).WithName("RestoreMedia")
            .WithSummary("Back from the trash (200), or from the archive to ready: 202, a worker moves the original back to the hot store.");
        group.MapPost("/{id}/archive", ArchiveAsync).WithName("ArchiveMedia")
            .WithSummary("202: a worker moves a ready asset's original to the cold store, then the asset is archived. 423 under legal hold, 409 unless ready.");
        return group;
    }

    private static async Task<Results<Created<MediaResponse>, Ok<MediaResponse>, ValidationProblem, ProblemHttpResult>> UploadAsync(
        HttpContext context, MediaService media, MediaStore store, IQuotas quotas, CancellationToken cancellationToken)
    {
        var request = context.Request;
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var contentType) || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(contentType.Boundary).Value is not { Length: > 0 and <= 200 } boundary)
        {
            // Checked here rather than by route metadata, so that authentication answers first (401 before 415).
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type",
                detail: "The body must be multipart/form-data with a boundary and a `file` field.");
        }
        // Quotas first, before a byte of the body is read: a count already at its limit (429), or a
        // declared body larger than what the storedBytes quota has left (413).
        var quota = QuotaSubject.Of(context.User);
        var budget = await media.StorageBudgetAsync(quota, cancellationToken);
        if (budget is not null && request.ContentLength is { } declared && declared - MultipartOverhead > budget.Remaining)
        {
            throw budget.Exceeded(declared);
        }
        await quotas.EnsureAsync(quota, Quota.Assets, 1, cancellationToken);
        await quotas.EnsureAsync(quota, Quota.QueuedJobs, 1, cancellationToken);

        StagedContent? staged = null;
        // Whatever ends this request (a refusal, a client gone mid-body, a fault) takes the staged file with it.
        try
        {
            var reader = new MultipartReader(boundary, request.Body) { HeadersLengthLimit = 16 * 1024, HeadersCountLimit = 16 };
            string? filename = null, title = null;
            var tags = new List<string>();
            var parts = 0;
            var textBytes = 0;
            try
            {
                MultipartSection? section;
                while ((section = await reader.ReadNextSectionAsync(cancellationToken)) is not null)
                {
                    if (++parts > MaxParts)
                    {
                        DeleteStaged(staged);
                        return Problems.LimitExceeded("multipartParts", MaxParts, $"A media upload has at most {MaxParts} parts (file, title, tags).");
                    }
                    if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase))
                    {
                        continue;
                    }
                    var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value;
                    if (name == "file" && disposition.IsFileDisposition())
                    {
                        if (staged is not null)
                        {
                            DeleteStaged(staged);
                            return Problems.Validation("file", "Send one file per request.");
                        }
                        filename = HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value;
                        staged = await media.StageAsync(section.Body, cancellationToken, budget);
                    }
                    else if (name is "title" or "tags")
                    {
                        // Read up to what is left of the text budget, never more: repeating a field does not get round it.
                        using var text = new StreamReader(section.Body);
                        var value = await ReadLimitedAsync(text, MaxTextChars - textBytes);
                        if (value is null)
                        {
                            DeleteStaged(staged);
                            return Problems.LimitExceeded("multipartFieldChars", MaxTextChars, $"title and tags together are at most {MaxTextChars} characters.");
                        }
                        textBytes += value.Length;
                        if (name == "title")
                        {
                            title = value.Trim();
                        }
                        else
                        {
                            tags.AddRange(value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
                        }
                    }
                }
            }
            catch (UploadTooLargeException ex)
            {
                return TooLarge(ex.Limit);
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                DeleteStaged(staged);
                return TooLarge(media.Options.MaxUploadBytes);
            }
            catch (InvalidDataException ex)
            {
                DeleteStaged(staged);
                return Problems.Validation("file", "The multipart body is malformed: " + ex.Message);
            }
            if (staged is null)
            {
                return Problems.Validation("file", "The `file` field is required.");
            }
            if (ValidateText(title, tags) is { } invalid)
            {
                DeleteStaged(staged);
                return invalid;
            }
            if (staged.Size == 0)
            {
                DeleteStaged(staged);
                return Problems.Validation("file", "The file is empty.");
            }
            if (staged.Type is null)
            {
                DeleteStaged(staged);
                return Unsupported();
            }
            var actor = context.User.Actor();
            var (asset, created) = await media.AdmitAsync(staged, actor, actor, filename, string.IsNullOrEmpty(title) ? null : title, NormalizeTags(tags), quota, bytesReserved: false, cancellationToken);
            var body = asset.ToResponse();
            return created ? TypedResults.Created($"/api/v1/media/{asset.Id}", body) : TypedResults.Ok(body);
        }
        finally
        {
            // AdmitAsync has already discarded it when it got that far; deleting a missing file is a no-op.
            DeleteStaged(staged);
        }
    }

    public static ProblemHttpResult TooLarge(long limit) => TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge,
        title: "Upload too large", detail: $"This server accepts uploads of at most {limit} bytes (Fundament:Media:MaxUploadBytes).");

    public static ProblemHttpResult Unsupported() => TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type",
        detail: "The content is not a supported image (JPEG, PNG, GIF, WebP, TIFF, HEIC, AVIF), video (MP4, MOV, MKV, WebM, AVI), audio (MP3, WAV, FLAC, OGG, M4A) or PDF file. The type is read from the content, not the name.");

    private static void DeleteStaged(StagedContent? staged)
    {
        if (staged is not null)
        {
            MediaService.TryDelete(staged.Path);
        }
    }

    /// <summary>Parts of one multipart upload: file, title and tags, with room for a client's extras.</summary>
    public const int MaxParts = 16;

    /// <summary>Characters of title and tags together in one multipart upload.</summary>
    public const int MaxTextChars = 8 * 1024;

    /// <summary>What multipart framing may add to a file's size in Content-Length.</summary>
    private const long MultipartOverhead = 64 * 1024;

    private static async Task<string?> ReadLimitedAsync(StreamReader reader, int limit)
    {
        var buffer = new char[limit + 1];
        var total = 0;
        int read;
        while (total <= limit && (read = await reader.ReadAsync(buffer.AsMemory(total))) > 0)
        {
            total += read;
        }
        return total > limit ? null : new string(buffer, 0, total);
    }

    public static ValidationProblem? ValidateText(string? title, IReadOnlyCollection<string>? tags)
    {
        var errors = new ValidationErrors().MaxLength("title", title, MaxTitleLength);
        if (title is not null && title.Any(char.IsControl))
        {
            errors.Add("title", "title must not contain control characters.");
        }
        if (tags is not null)
        {
            if (tags.Count > MaxTags)
            {
                errors.Add("tags", $"At most {MaxTags} tags.");
            }
            if (tags.Any(t => t.Trim().Length is 0 or > MaxTagLength || t.Any(c => char.IsControl(c) || c == ',')))
            {
                errors.Add("tags", $"Each tag is 1-{MaxTagLength} characters, without commas or control characters.");
            }
        }
        return errors.Any ? errors.ToProblem() : null;
    }

    public static IReadOnlyList<string> NormalizeTags(IEnumerable<string> tags) =>
        tags.Select(t => t.Trim().ToLowerInvariant()).Where(t => t.Length > 0).Distinct(StringComparer.Ordinal).ToList();

    private static async Task<Results<Ok<MediaPage>, ValidationProblem>> ListAsync(
        [AsParameters] MediaListQuery query, HttpContext context, MediaAccess access, MediaStore store, CancellationToken cancellationToken)
    {
        if (query.Problems() is { Any: true } errors)
        {
            return errors.ToProblem();
        }
        var caller = await access.CallerAsync(context);
        var take = query.Limit ?? 50;
        var rows = await store.ListAsync(query.ToStoreQuery(caller.Admin ? null : caller.Actor, caller.Admin ? null : caller.Subject, take + 1), cancellationToken);
        var page = rows.Take(take).Select(r => r.ToResponse()).ToList();
        return TypedResults.Ok(new MediaPage(page, rows.Count > take ? page[^1].Id : null));
    }

    private static async Task<Ok<MediaStats>> StatsAsync(HttpContext context, MediaAccess access, MediaStore store, CancellationToken cancellationToken)
    {
        var caller = await access.CallerAsync(context);
        return TypedResults.Ok(await store.StatsAsync(caller.Admin ? null : caller.Actor, cancellationToken));
    }

    /// <summary>The asset when the caller may read it; 404 otherwise (no hint that it exists).</summary>
    private static async Task<(AssetRow? Asset, Caller Caller)> FindAsync(string id, HttpContext context, MediaAccess access, MediaStore store, CancellationToken cancellationToken)
    {
        var caller = await access.CallerAsync(context);
        if (id.Length > 64 || await store.GetAsync(id, cancellationToken) is not { } asset || !await access.CanReadAsync(caller, asset, store, cancellationToken))
        {
            return (null, caller);
        }
        return (asset, caller);
    }

    private static async Task<Results<Ok<MediaResponse>, ProblemHttpResult>> GetAsync(string id, HttpContext context, MediaAccess access, MediaStore store, CancellationToken cancellationToken)
    {
        var (asset, caller) = await FindAsync(id, context, access, store, cancellationToken);
        if (asset is null)
        {
            return Problems.NotFound("The asset");
        }
        var shares = MediaAccess.CanWrite(caller, asset) ? await store.SharesAsync(id, cancellationToken) : null;
        return TypedResults.Ok(asset.ToResponse(await store.DerivativesAsync(id, cancellationToken), await store.HistoryAsync(id, cancellationToken), shares));
    }

    private static async Task<IResult> ContentAsync(string id, HttpContext context, MediaAccess access, MediaStore store, MediaService media, CancellationToken cancellationToken)
    {
        var (asset, _) = await FindAsync(id, context, access, store, cancellationToken);
        if (asset is null || asset.State == MediaState.Trashed)
        {
            return Problems.NotFound("The asset");
        }
        return new Streamed(ctx => ContentRangeResults.ServeAsync(ctx, media.Stores.Of(asset.Tier), BlobKeys.Content(asset.Sha256), asset.Mime, asset.Sha256, asset.Size, asset.Filename, immutable: true));
    }

    private static async Task<IResult> ThumbnailAsync(string id, string? size, HttpContext context, MediaAccess access, MediaStore store, MediaService media, CancellationToken cancellationToken)
    {
        if (size is not (null or "small" or "large"))
        {
            return Problems.Validation("size", "size must be small or large.");
        }
        return await DerivativeAsync(id, size == "large" ? "thumb-large" : "thumb-small", context, access, store, media, cancellationToken);
    }

    private static async Task<IResult> DerivativeAsync(string id, string name, HttpContext context, MediaAccess access, MediaStore store, MediaService media, CancellationToken cancellationToken)
    {
        var (asset, _) = await FindAsync(id, context, access, store, cancellationToken);
        if (asset is null || asset.State == MediaState.Trashed)
        {
            return Problems.NotFound("The asset");
        }
        var derivative = (await store.DerivativesAsync(id, cancellationToken)).FirstOrDefault(d => d.Name == name);
        if (derivative is null)
        {
            return Problems.NotFound(asset.State is MediaState.Uploaded or MediaState.Processing ? "The derivative (the asset is still processing)" : "The derivative");
        }
        return new Streamed(ctx => ContentRangeResults.ServeAsync(ctx, media.Stores.Hot, derivative.BlobKey, derivative.Mime, $"{asset.Sha256[..16]}-{derivative.Name}-{derivative.Size}", derivative.Size, null, immutable: false));
    }

    private static async Task<Results<Ok<MediaResponse>, ValidationProblem, ProblemHttpResult>> PatchAsync(
        string id, MediaPatch patch, HttpContext context, MediaAccess access, IDatabase database, MediaStore store, IAuditLog audit, CancellationToken cancellationToken)
    {
        var (asset, caller) = await FindAsync(id, context, access, store, cancellationToken);
        if (asset is null)
        {
            return Problems.NotFound("The asset");
        }
        if (!MediaAccess.CanWrite(caller, asset))
        {
            return Problems.Forbidden("Only the owner or an admin can change an asset.");
        }
        if (ValidateText(patch.Title, patch.Tags?.ToList()) is { } invalid)
        {
            return invalid;
        }
        if (patch.SharedWith is { Count: > 100 } || patch.SharedWith?.Any(u => u.Length is 0 or > 64) == true)
        {
            return Problems.Validation("sharedWith", "sharedWith holds at most 100 user ids.");
        }
        if (patch.LegalHold is not null && !caller.Admin)
        {
            return Problems.Forbidden("Only an admin (media.admin) can set or lift a legal hold.");
        }
        var changed = new Dictionary<string, string>();
        if (patch.Title is not null) { changed["title"] = "changed"; }
        if (patch.Tags is not null) { changed["tags"] = string.Join(",", NormalizeTags(patch.Tags)); }
        if (patch.LegalHold is { } hold) { changed["legalHold"] = hold ? "on" : "off"; }
        if (patch.SharedWith is not null) { changed["sharedWith"] = string.Join(",", patch.SharedWith); }
        await database.AuditedAsync(audit,
            async () =>
            {
                await store.PatchAsync(asset, patch with { Tags = patch.Tags is null ? null : NormalizeTags(patch.Tags), Title = patch.Title?.Trim() }, cancellationToken);
                return true;
            },
            _ => new AuditEvent(patch.LegalHold is not null ? "media.legal_hold" : "media.update", AuditOutcome.Success)
            {
                Target = $"media:{id}",
                Details = changed,
            }.From(context), cancellationToken);
        var updated = (await store.GetAsync(id, cancellationToken))!;
        return TypedResults.Ok(updated.ToResponse(await store.DerivativesAsync(id, cancellationToken), await store.HistoryAsync(id, cancellationToken), await store.SharesAsync(id, cancellationToken)));
    }

    private static Task<Results<Ok<MediaResponse>, Accepted<MediaResponse>, ProblemHttpResult>> TrashAsync(string id, HttpContext context, MediaAccess access, MediaStore store, MediaService media, CancellationToken cancellationToken) =>
        LifecycleAsync(id, context, access, store, (asset, actor) => media.TrashAsync(asset, actor, "deleted by " + actor, cancellationToken), cancellationToken);

    private static Task<Results<Ok<MediaResponse>, Accepted<MediaResponse>, ProblemHttpResult>> RestoreAsync(string id, HttpContext context, MediaAccess access, MediaStore store, MediaService media, CancellationToken cancellationToken) =>
        LifecycleAsync(id, context, access, store, (asset, actor) => asset.State == MediaState.Archived
            ? media.RequestMoveAsync(asset, MediaTier.Hot, actor, "restored from archive by " + actor, cancellationToken, requester: QuotaSubject.Of(context.User))
            : media.RestoreAsync(asset, actor, cancellationToken), cancellationToken);

    private static Task<Results<Ok<MediaResponse>, Accepted<MediaResponse>, ProblemHttpResult>> ArchiveAsync(string id, HttpContext context, MediaAccess access, MediaStore store, MediaService media, CancellationToken cancellationToken) =>
        LifecycleAsync(id, context, access, store, (asset, actor) => media.RequestMoveAsync(asset, MediaTier.Cold, actor, "archived by " + actor, cancellationToken, requester: QuotaSubject.Of(context.User)), cancellationToken);

    private static async Task<Results<Ok<MediaResponse>, Accepted<MediaResponse>, ProblemHttpResult>> LifecycleAsync(
        string id, HttpContext context, MediaAccess access, MediaStore store, Func<AssetRow, string, Task<LifecycleResult>> action, CancellationToken cancellationToken)
    {
        var (asset, caller) = await FindAsync(id, context, access, store, cancellationToken);
        if (asset is null)
        {
            return Problems.NotFound("The asset");
        }
        if (!MediaAccess.CanWrite(caller, asset))
        {
            return Problems.Forbidden("Only the owner or an admin can change an asset.");
        }
        var result = await action(asset, caller.Actor);
        switch (result)
        {
            case LifecycleResult.Held:
                return TypedResults.Problem(statusCode: StatusCodes.Status423Locked, title: "Legal hold", detail: "The asset is under legal hold; it cannot be trashed, archived or purged until an admin lifts the hold.");
            case LifecycleResult.Conflict:
                return Problems.Conflict($"The asset is {(await store.GetAsync(id, cancellationToken))?.State ?? "gone"}; that change does not apply.");
        }
        var updated = (await store.GetAsync(id, cancellationToken))!;
        var response = updated.ToResponse(await store.DerivativesAsync(id, cancellationToken), await store.HistoryAsync(id, cancellationToken));
        // Accepted: the asset is as it was; a worker moves the original, and GET shows the new state when it is done.
        return result == LifecycleResult.Accepted ? TypedResults.Accepted($"/api/v1/media/{id}", response) : TypedResults.Ok(response);
    }

    private sealed class Streamed(Func<HttpContext, Task> write) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext) => write(httpContext);
    }
}

/// <summary>Raises the request body limit for uploads (the global default is small).</summary>
internal sealed class UploadSizeLimit(long limit) : IRequestSizeLimitMetadata
{
    public long? MaxRequestBodySize => limit;
}

/// <summary>The filters and cursor of <c>GET /api/v1/media</c>.</summary>
internal sealed record MediaListQuery(
    [property: FromQuery(Name = "type")] string? Type,
    [property: FromQuery(Name = "state")] string? State,
    [property: FromQuery(Name = "tag")] string? Tag,
    [property: FromQuery(Name = "takenFrom")] DateTimeOffset? TakenFrom,
    [property: FromQuery(Name = "takenTo")] DateTimeOffset? TakenTo,
    [property: FromQuery(Name = "camera")] string? Camera,
    [property: FromQuery(Name = "q")] string? Q,
    [property: FromQuery(Name = "after")] string? After,
    [property: FromQuery(Name = "limit")] int? Limit)
{
    public ValidationErrors Problems()
    {
        var errors = new ValidationErrors();
        if (Type is not null && !MediaKind.All.Contains(Type))
        {
            errors.Add("type", "type must be image, video, audio or document.");
        }
        if (State is not null && !MediaState.All.Contains(State))
        {
            errors.Add("state", "state must be uploaded, processing, ready, failed, archived or trashed.");
        }
        if (Limit is < 1 or > 200)
        {
            errors.Add("limit", "limit must be between 1 and 200.");
        }
        return errors.MaxLength("tag", Tag, MediaApi.MaxTagLength).MaxLength("camera", Camera, 100).MaxLength("q", Q, 100).MaxLength("after", After, 64);
    }

    /// <param name="owner">Only this owner's assets (null: everyone's, for media.admin).</param>
    /// <param name="sharedWith">Also assets shared with this subject.</param>
    public MediaQuery ToStoreQuery(string? owner, string? sharedWith, int take) =>
        new(owner, sharedWith, Type, State, Tag, TakenFrom, TakenTo, Camera, Q, After, take);
}
