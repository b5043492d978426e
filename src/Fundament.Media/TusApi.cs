using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Fundament.Core.Quotas;
using Fundament.Media.Uploads;

namespace Fundament.Media;

/// <summary>
/// Resumable uploads, tus 1.0.0 with the creation, creation-with-upload, termination, checksum
/// and expiration extensions (https://tus.io/protocols/resumable-upload), so tus-js-client, Uppy
/// and the other standard clients upload and resume. Bytes go to <see cref="IUploadParts"/> (this
/// node's disk, or the shared hot store so any replica continues the upload); what a broken
/// connection delivered is kept, and HEAD tells the client where to resume. A finished upload
/// becomes an asset exactly like a multipart one.
/// </summary>
internal static class TusApi
{
    public const string Version = "1.0.0";
    private const string OffsetContentType = "application/offset+octet-stream";
    private const string Extensions = "creation,creation-with-upload,termination,checksum,expiration";

    public static RouteGroupBuilder MapTusApi(this IEndpointRouteBuilder endpoints, long maxUpload)
    {
        var group = endpoints.MapGroup("/api/v1/media/uploads").WithTags("Media uploads (tus)").RequireAuthorization(MediaPermissions.Own);
        group.MapMethods("", ["OPTIONS"], Options).AllowAnonymous().WithName("TusOptions").WithSummary("tus discovery: version, extensions, maximum size, checksum algorithms.");
        group.MapPost("", CreateAsync).WithMetadata(new UploadSizeLimit(maxUpload)).DisableAntiforgery()
            .WithName("TusCreate").WithSummary("Creates an upload (Upload-Length, Upload-Metadata: filename, title, tags); may carry the first bytes.");
        group.MapMethods("/{id}", ["HEAD"], HeadAsync).WithName("TusHead").WithSummary("Upload-Offset: where to resume.");
        group.MapGet("/{id}", GetAsync).WithName("GetUpload").WithSummary("The upload as JSON, with the asset id once it is finished.");
        group.MapPatch("/{id}", PatchAsync).WithMetadata(new UploadSizeLimit(maxUpload)).DisableAntiforgery()
            .WithName("TusPatch").WithSummary("Appends bytes at Upload-Offset (application/offset+octet-stream, optional Upload-Checksum).");
        group.MapDelete("/{id}", DeleteAsync).WithName("TusDelete").WithSummary("Terminates an upload and deletes its bytes.");
        return group;
    }

    private static IResult Options(HttpContext context, MediaService media)
    {
        var headers = context.Response.Headers;
        headers["Tus-Resumable"] = Version;
        headers["Tus-Version"] = Version;
        headers["Tus-Extension"] = Extensions;
        headers["Tus-Max-Size"] = media.Options.MaxUploadBytes.ToString(CultureInfo.InvariantCulture);
        headers["Tus-Checksum-Algorithm"] = "sha1,sha256,md5";
        return Results.NoContent();
    }

    /// <summary>Every tus request but OPTIONS names the protocol version; a mismatch is 412 with the versions we speak.</summary>
    private static IResult? CheckVersion(HttpContext context)
    {
        context.Response.Headers["Tus-Resumable"] = Version;
        context.Response.Headers.CacheControl = "no-store";
        if (context.Request.Headers["Tus-Resumable"] != Version)
        {
            context.Response.Headers["Tus-Version"] = Version;
            return TypedResults.Problem(statusCode: StatusCodes.Status412PreconditionFailed, title: "Unsupported tus version", detail: $"Send Tus-Resumable: {Version}.");
        }
        return null;
    }

    private static async Task<IResult> CreateAsync(HttpContext context, MediaService media, UploadStore uploads, IQuotas quotas, Fundament.Core.Storage.IDatabase database, CancellationToken cancellationToken)
    {
        if (CheckVersion(context) is { } wrong)
        {
            return wrong;
        }
        var request = context.Request;
        if (request.Headers.ContainsKey("Upload-Defer-Length"))
        {
            return Problems.Validation("Upload-Defer-Length", "Deferred lengths are not supported; send Upload-Length.");
        }
        if (!long.TryParse(request.Headers["Upload-Length"], NumberStyles.None, CultureInfo.InvariantCulture, out var length))
        {
            return Problems.Validation("Upload-Length", "Upload-Length must be a non-negative integer.");
        }
        if (length > media.Options.MaxUploadBytes)
        {
            return MediaApi.TooLarge(media.Options.MaxUploadBytes);
        }
        if (length == 0)
        {
            return Problems.Validation("Upload-Length", "An empty file cannot become an asset.");
        }
        if (!TryParseMetadata(request.Headers["Upload-Metadata"].ToString(), out var metadata))
        {
            return Problems.Validation("Upload-Metadata", "Upload-Metadata must be comma-separated `key base64value` pairs.");
        }
        var title = metadata.GetValueOrDefault("title")?.Trim();
        var tags = metadata.GetValueOrDefault("tags")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) ?? [];
        if (MediaApi.ValidateText(title, tags) is { } invalid)
        {
            return invalid;
        }
        var filename = metadata.GetValueOrDefault("filename") ?? metadata.GetValueOrDefault("name");
        // The upload reserves its length against the storedBytes quota from now on, and takes a
        // pendingUploads slot: both checked with the row's insert, so two creations cannot share the last room.
        var quota = QuotaSubject.Of(context.User);
        var upload = await database.InUnitOfWorkAsync(async () =>
        {
            await quotas.EnsureAsync(quota, Quota.PendingUploads, 1, cancellationToken);
            await quotas.EnsureAsync(quota, Quota.StoredBytes, length, cancellationToken);
            return await uploads.CreateAsync(context.User.Actor(), length, FileNames.Sanitize(filename), string.IsNullOrEmpty(title) ? null : title, MediaApi.NormalizeTags(tags), cancellationToken);
        }, cancellationToken);
        var location = $"{request.PathBase}/api/v1/media/uploads/{upload.Id}";
        context.Response.Headers.Location = location;
        context.Response.Headers["Upload-Expires"] = Expires(upload.ExpiresAt);
        if (request.ContentType?.StartsWith(OffsetContentType, StringComparison.OrdinalIgnoreCase) == true && request.ContentLength is not 0)
        {
            var result = await AppendAsync(context, media, uploads, upload, 0);
            if (result is not null)
            {
                return result;
            }
        }
        return Results.Created(location, null);
    }

    private static async Task<IResult> HeadAsync(string id, HttpContext context, MediaService media, UploadStore uploads, CancellationToken cancellationToken)
    {
        if (CheckVersion(context) is { } wrong)
        {
            return wrong;
        }
        if (await uploads.GetAsync(id, context.User.Actor(), cancellationToken) is not { } upload)
        {
            return Results.NotFound();
        }
        if (upload.AssetId is null && upload.Offset == upload.Length && await FinishAsync(context, media, uploads, upload, fromHead: true) is { } failed)
        {
            return failed;
        }
        var headers = context.Response.Headers;
        headers["Upload-Offset"] = upload.Offset.ToString(CultureInfo.InvariantCulture);
        headers["Upload-Length"] = upload.Length.ToString(CultureInfo.InvariantCulture);
        headers["Upload-Expires"] = Expires(upload.ExpiresAt);
        if (upload.AssetId is not null)
        {
            headers["Media-Id"] = upload.AssetId;
        }
        return Results.Ok();
    }

    private static async Task<IResult> GetAsync(string id, HttpContext context, UploadStore uploads, CancellationToken cancellationToken) =>
        await uploads.GetAsync(id, context.User.Actor(), cancellationToken) is { } upload
            ? TypedResults.Ok(new UploadResponse(upload.Id, upload.Offset, upload.Length, upload.Filename, upload.AssetId, DateTimeOffset.FromUnixTimeMilliseconds(upload.ExpiresAt)))
            : Problems.NotFound("The upload");

    private static async Task<IResult> PatchAsync(string id, HttpContext context, MediaService media, UploadStore uploads, CancellationToken cancellationToken)
    {
        if (CheckVersion(context) is { } wrong)
        {
            return wrong;
        }
        var request = context.Request;
        if (request.ContentType?.StartsWith(OffsetContentType, StringComparison.OrdinalIgnoreCase) != true)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type", detail: $"PATCH bodies are {OffsetContentType}.");
        }
        if (!long.TryParse(request.Headers["Upload-Offset"], NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
        {
            return Problems.Validation("Upload-Offset", "Upload-Offset must be a non-negative integer.");
        }
        // No RequestAborted from here on: once bytes arrive they are kept, even if the client is gone before we answer.
        if (await uploads.GetAsync(id, context.User.Actor(), CancellationToken.None) is not { } upload)
        {
            return Results.NotFound();
        }
        if (upload.AssetId is not null)
        {
            return Problems.Conflict("The upload is already complete.");
        }
        if (offset != upload.Offset)
        {
            return Problems.Conflict($"Upload-Offset is {offset} but the upload is at {upload.Offset}; HEAD it and resume from there.");
        }
        return await AppendAsync(context, media, uploads, upload, offset) ?? Results.NoContent();
    }

    /// <summary>Appends the body at <paramref name="offset"/>. Returns an error result, or null when the bytes were taken.</summary>
    private static async Task<IResult?> AppendAsync(HttpContext context, MediaService media, UploadStore uploads, UploadRow upload, long offset)
    {
        if (TryChecksum(context.Request, out var checksum, out var expected) is { } checksumProblem)
        {
            return checksumProblem;
        }
        UploadChunk? chunk;
        try
        {
            chunk = await uploads.Parts.BeginAsync(upload, offset, ct => uploads.IsAtAsync(upload.Id, offset, ct), CancellationToken.None);
        }
        catch (UploadBusyException)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status423Locked, title: "Upload busy", detail: "Another request is writing this upload.");
        }
        catch (UploadMovedException)
        {
            return Problems.Conflict("Another request moved the upload on meanwhile; HEAD it and resume from its offset.");
        }
        if (chunk is null)
        {
            return Results.NotFound();
        }
        long written = 0;
        long? expires;
        using (checksum)
        await using (chunk)
        {
            var (copied, broken, pastLength) = await CopyBodyAsync(context.Request.Body, chunk, upload.Length - offset, checksum);
            if (pastLength)
            {
                return Problems.Validation("Upload-Length", "The body goes past Upload-Length.");
            }
            written = copied;
            if (!broken && checksum is not null && !CryptographicOperations.FixedTimeEquals(checksum.GetHashAndReset(), expected))
            {
                return TypedResults.Problem(statusCode: 460, title: "Checksum mismatch", detail: "The body does not match Upload-Checksum; nothing was stored, send the chunk again.");
            }
            // Recorded even when the client is already gone: the bytes are kept and the client will HEAD for them.
            try
            {
                expires = await uploads.AdvanceAsync(upload.Id, offset, offset + written, CancellationToken.None, await chunk.PersistAsync(written, CancellationToken.None));
            }
            catch (UploadSegmentLostException)
            {
                expires = null;
            }
            if (expires is null)
            {
                await chunk.AbandonAsync(CancellationToken.None);
                return Problems.Conflict("Another request moved the upload on meanwhile; HEAD it and resume from its offset.");
            }
            if (broken)
            {
                return Results.Empty;
            }
        }
        context.Response.Headers["Upload-Offset"] = (offset + written).ToString(CultureInfo.InvariantCulture);
        context.Response.Headers["Upload-Expires"] = Expires(expires.Value);
        upload.Offset = offset + written;
        return upload.Offset == upload.Length ? await FinishAsync(context, media, uploads, upload, fromHead: false) : null;
    }

    /// <summary>The <c>Upload-Checksum</c> the chunk must match, if the client sent one; a problem when it is malformed.</summary>
    private static IResult? TryChecksum(HttpRequest request, out IncrementalHash? checksum, out byte[]? expected)
    {
        checksum = null;
        expected = null;
        if (request.Headers["Upload-Checksum"].ToString() is not { Length: > 0 } header)
        {
            return null;
        }
        var parts = header.Split(' ', 2);
        HashAlgorithmName? algorithm = parts[0] switch { "sha1" => HashAlgorithmName.SHA1, "sha256" => HashAlgorithmName.SHA256, "md5" => HashAlgorithmName.MD5, _ => null };
        if (algorithm is null)
        {
            return Problems.Validation("Upload-Checksum", "Supported checksum algorithms: sha1, sha256, md5.");
        }
        try
        {
            expected = Convert.FromBase64String(parts.Length == 2 ? parts[1] : "");
        }
        catch (FormatException)
        {
            return Problems.Validation("Upload-Checksum", "The checksum must be base64.");
        }
        checksum = IncrementalHash.CreateHash(algorithm.Value);
        return null;
    }

    /// <summary>
    /// Streams the request body into the chunk. A broken connection keeps what arrived (nothing,
    /// when a checksum cannot verify a part), so the client resumes from there; a body longer than
    /// the <paramref name="left"/> bytes the upload still takes stops the copy.
    /// </summary>
    private static async Task<(long Written, bool Broken, bool PastLength)> CopyBodyAsync(Stream body, UploadChunk chunk, long left, IncrementalHash? checksum)
    {
        long written = 0;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            while (true)
            {
                int read;
                try
                {
                    // Not RequestAborted: a client that goes away mid-body must not make us drop what it had already sent.
                    // A stalled client is cut off by Kestrel's minimum request body data rate instead.
                    read = await body.ReadAsync(buffer.AsMemory(0, 1 << 16), CancellationToken.None);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    return (checksum is null ? written : 0, true, false);
                }
                if (read == 0)
                {
                    return (written, false, false);
                }
                if (read > left - written)
                {
                    return (written, false, true);
                }
                // A failing write (a full disk) is our fault, not the client's: it propagates (500) and nothing is recorded.
                await chunk.Body.WriteAsync(buffer.AsMemory(0, read), CancellationToken.None);
                checksum?.AppendData(buffer, 0, read);
                written += read;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// A complete upload becomes an asset (or the owner's existing one with the same content). Also
    /// run by HEAD for an upload whose last chunk was recorded by a process that died before this
    /// step, or whose client gave up waiting for the last PATCH. One request at a time finishes an
    /// upload (a claim in the database); the others get 423 and HEAD again. Not cancelled by the
    /// client: the bytes were acknowledged, and the upload's parts stay until it is an asset.
    /// </summary>
    private static async Task<IResult?> FinishAsync(HttpContext context, MediaService media, UploadStore uploads, UploadRow upload, bool fromHead)
    {
        var none = CancellationToken.None;
        if (await uploads.TryClaimFinishAsync(upload.Id, none) is not { } claim)
        {
            // HEAD just reports: every byte is here (Upload-Offset = Upload-Length), and Media-Id
            // follows once the other request is done. A PATCH that completes it too is told to wait.
            return fromHead ? null : TypedResults.Problem(statusCode: StatusCodes.Status423Locked, title: "Upload finishing", detail: "Another request is turning this upload into an asset; HEAD it again shortly.");
        }
        var finished = false;
        try
        {
            if (await uploads.Parts.StageAsync(upload, none) is not { } staged)
            {
                // Under the claim nobody else is finishing it: its bytes are really gone.
                await uploads.DeleteAsync(upload.Id, none);
                finished = true;
                return Problems.Conflict("The upload's bytes are gone; start a new upload.");
            }
            if (staged.Type is null)
            {
                media.Discard(staged);
                await uploads.DeleteAsync(upload.Id, none);
                finished = true;
                return MediaApi.Unsupported();
            }
            // Its bytes were reserved when the upload was created; the asset and its job still count.
            var (asset, _) = await media.AdmitAsync(staged, upload.Owner, context.User.Actor(), upload.Filename, upload.Title, JsonSerializer.Deserialize<List<string>>(upload.Tags) ?? [],
                QuotaSubject.Of(context.User), bytesReserved: true, none);
            finished = true;
            // Only the claim's holder deletes the parts; one that overran its claim leaves them to its successor.
            if (await uploads.CompleteAsync(upload.Id, asset.Id, claim, none))
            {
                await uploads.Parts.DeleteAsync(upload.Id, none);
            }
            context.Response.Headers["Media-Id"] = asset.Id;
            return null;
        }
        finally
        {
            if (!finished)
            {
                await uploads.ReleaseFinishAsync(upload.Id, claim, none);
            }
        }
    }

    private static async Task<IResult> DeleteAsync(string id, HttpContext context, UploadStore uploads, CancellationToken cancellationToken)
    {
        if (CheckVersion(context) is { } wrong)
        {
            return wrong;
        }
        if (await uploads.GetAsync(id, context.User.Actor(), cancellationToken) is null)
        {
            return Results.NotFound();
        }
        await uploads.DeleteAsync(id, cancellationToken);
        return Results.NoContent();
    }

    private static string Expires(long at) => DateTimeOffset.FromUnixTimeMilliseconds(at).ToString("R", CultureInfo.InvariantCulture);

    internal static bool TryParseMetadata(string header, out Dictionary<string, string> metadata)
    {
        metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(header))
        {
            return true;
        }
        if (header.Length > 8 * 1024)
        {
            return false;
        }
        foreach (var pair in header.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split(' ', 2, StringSplitOptions.TrimEntries);
            if (parts[0].Length == 0 || metadata.ContainsKey(parts[0]))
            {
                return false;
            }
            try
            {
                metadata[parts[0]] = parts.Length == 2 ? Encoding.UTF8.GetString(Convert.FromBase64String(parts[1])) : "";
            }
            catch (FormatException)
            {
                return false;
            }
        }
        return true;
    }
}

public sealed record UploadResponse(string Id, long Offset, long Length, string? Filename, string? AssetId, DateTimeOffset ExpiresAt);

