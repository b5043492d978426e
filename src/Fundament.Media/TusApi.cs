using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Fundament.Http;
using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Fundament.Media;

/// <summary>
/// Resumable uploads, tus 1.0.0 with the creation, creation-with-upload, termination, checksum
/// and expiration extensions (https://tus.io/protocols/resumable-upload), so tus-js-client, Uppy
/// and the other standard clients upload and resume. Bytes go straight to a part file under the
/// upload folder; what a broken connection delivered is kept, and HEAD tells the client where to
/// resume. A finished upload becomes an asset exactly like a multipart one.
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

    private static async Task<IResult> CreateAsync(HttpContext context, MediaService media, UploadStore uploads, TimeProvider time, CancellationToken cancellationToken)
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
        var upload = await uploads.CreateAsync(context.User.Actor(), length, FileNames.Sanitize(filename), string.IsNullOrEmpty(title) ? null : title, MediaApi.NormalizeTags(tags), cancellationToken);
        Directory.CreateDirectory(media.UploadFolder);
        await File.WriteAllBytesAsync(uploads.PartPath(upload.Id), [], cancellationToken);
        var location = $"{request.PathBase}/api/v1/media/uploads/{upload.Id}";
        context.Response.Headers.Location = location;
        context.Response.Headers["Upload-Expires"] = Expires(upload.ExpiresAt);
        if (request.ContentType?.StartsWith(OffsetContentType, StringComparison.OrdinalIgnoreCase) == true && request.ContentLength is not 0)
        {
            var result = await AppendAsync(context, media, uploads, time, upload, 0, cancellationToken);
            if (result is not null)
            {
                return result;
            }
        }
        return Results.Created(location, null);
    }

    private static async Task<IResult> HeadAsync(string id, HttpContext context, UploadStore uploads, CancellationToken cancellationToken)
    {
        if (CheckVersion(context) is { } wrong)
        {
            return wrong;
        }
        if (await uploads.GetAsync(id, context.User.Actor(), cancellationToken) is not { } upload)
        {
            return Results.NotFound();
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

    private static async Task<IResult> PatchAsync(string id, HttpContext context, MediaService media, UploadStore uploads, TimeProvider time, CancellationToken cancellationToken)
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
        return await AppendAsync(context, media, uploads, time, upload, offset, CancellationToken.None) ?? Results.NoContent();
    }

    /// <summary>Appends the body at <paramref name="offset"/>. Returns an error result, or null when the bytes were taken.</summary>
    private static async Task<IResult?> AppendAsync(HttpContext context, MediaService media, UploadStore uploads, TimeProvider time, UploadRow upload, long offset, CancellationToken cancellationToken)
    {
        var request = context.Request;
        IncrementalHash? checksum = null;
        byte[]? expected = null;
        if (request.Headers["Upload-Checksum"].ToString() is { Length: > 0 } header)
        {
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
        }
        var path = uploads.PartPath(upload.Id);
        FileStream file;
        try
        {
            // FileShare.None takes an exclusive lock, so two PATCHes of one upload cannot interleave.
            // Unbuffered: every block read from the client goes to the OS at once, so what arrived is on file if the process dies.
            file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
        }
        catch (FileNotFoundException)
        {
            return Results.NotFound();
        }
        catch (IOException)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status423Locked, title: "Upload busy", detail: "Another request is writing this upload.");
        }
        long written = 0;
        var tooLong = false;
        var complete = false;
        using (checksum)
        await using (file)
        {
            // Anything past the recorded offset is from a request that broke before it was recorded.
            file.SetLength(offset);
            file.Seek(offset, SeekOrigin.Begin);
            var left = upload.Length - offset;
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 16);
            try
            {
                int read;
                // Not RequestAborted: a client that goes away mid-body must not make us drop what it had already sent.
                // A stalled client is cut off by Kestrel's minimum request body data rate instead.
                while ((read = await request.Body.ReadAsync(buffer.AsMemory(0, 1 << 16), CancellationToken.None)) > 0)
                {
                    if (read > left - written)
                    {
                        tooLong = true;
                        break;
                    }
                    await file.WriteAsync(buffer.AsMemory(0, read), CancellationToken.None);
                    checksum?.AppendData(buffer, 0, read);
                    written += read;
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The connection broke: keep what arrived (unless it cannot be verified) so the client resumes from there.
                if (checksum is not null)
                {
                    written = 0;
                }
                file.SetLength(offset + written);
                await file.FlushAsync(CancellationToken.None);
                await uploads.AdvanceAsync(upload.Id, offset, offset + written, CancellationToken.None);
                return Results.Empty;
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
            if (tooLong)
            {
                file.SetLength(offset);
                return Problems.Validation("Upload-Length", "The body goes past Upload-Length.");
            }
            if (checksum is not null && !CryptographicOperations.FixedTimeEquals(checksum.GetHashAndReset(), expected))
            {
                file.SetLength(offset);
                return TypedResults.Problem(statusCode: 460, title: "Checksum mismatch", detail: "The body does not match Upload-Checksum; nothing was stored, send the chunk again.");
            }
            await file.FlushAsync(CancellationToken.None);
            file.Flush(flushToDisk: true);
            complete = offset + written == upload.Length;
        }
        // Recorded even when the client is already gone: the bytes are on disk and the client will HEAD for them.
        var expires = await uploads.AdvanceAsync(upload.Id, offset, offset + written, CancellationToken.None);
        context.Response.Headers["Upload-Offset"] = (offset + written).ToString(CultureInfo.InvariantCulture);
        context.Response.Headers["Upload-Expires"] = Expires(expires);
        if (!complete)
        {
            return null;
        }
        var staged = await media.StageFileAsync(path, cancellationToken);
        if (staged.Type is null)
        {
            MediaService.TryDelete(staged.Path);
            await uploads.DeleteAsync(upload.Id, CancellationToken.None);
            return MediaApi.Unsupported();
        }
        var actor = context.User.Actor();
        var (asset, _) = await media.AdmitAsync(staged, actor, actor, upload.Filename, upload.Title, JsonSerializer.Deserialize<List<string>>(upload.Tags) ?? [], cancellationToken);
        await uploads.CompleteAsync(upload.Id, asset.Id, cancellationToken);
        context.Response.Headers["Media-Id"] = asset.Id;
        return null;
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

/// <summary>Uploads in progress (table <c>media_uploads</c>); their bytes are part files in the upload folder.</summary>
internal sealed class UploadStore(IDatabase database, TimeProvider time, MediaService media)
{
    private const string Columns = "id AS Id, owner AS Owner, length AS Length, upload_offset AS Offset, filename AS Filename, title AS Title, tags AS Tags, expires_at AS ExpiresAt, asset_id AS AssetId";

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    private long ExpiresAt => Now + (long)media.Options.UploadExpiry.TotalMilliseconds;

    public string PartPath(string id) => Path.Combine(media.UploadFolder, Guid.Parse(id).ToString("N") + ".part");

    public async Task<UploadRow> CreateAsync(string owner, long length, string? filename, string? title, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        var row = new UploadRow { Id = Guid.CreateVersion7().ToString(), Owner = owner, Length = length, Filename = filename, Title = title, Tags = JsonSerializer.Serialize(tags), ExpiresAt = ExpiresAt };
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO media_uploads (id, owner, length, upload_offset, filename, title, tags, created_at, expires_at) VALUES (@Id, @Owner, @Length, 0, @Filename, @Title, @Tags, @now, @ExpiresAt)
            """, new { row.Id, row.Owner, row.Length, row.Filename, row.Title, row.Tags, row.ExpiresAt, now = Now }, cancellationToken: cancellationToken));
        return row;
    }

    public async Task<UploadRow?> GetAsync(string id, string owner, CancellationToken cancellationToken)
    {
        if (!Guid.TryParse(id, out _))
        {
            return null;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<UploadRow>(new CommandDefinition(
            $"SELECT {Columns} FROM media_uploads WHERE id = @id AND owner = @owner AND expires_at > @now", new { id, owner, now = Now }, cancellationToken: cancellationToken));
    }

    public async Task<long> AdvanceAsync(string id, long from, long to, CancellationToken cancellationToken)
    {
        var expires = ExpiresAt;
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE media_uploads SET upload_offset = @to, expires_at = @expires WHERE id = @id AND upload_offset = @from", new { id, from, to, expires }, cancellationToken: cancellationToken));
        return expires;
    }

    public async Task CompleteAsync(string id, string assetId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("UPDATE media_uploads SET asset_id = @assetId WHERE id = @id", new { id, assetId }, cancellationToken: cancellationToken));
    }

    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        MediaService.TryDelete(PartPath(id));
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM media_uploads WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Part files in this node's upload folder with no live upload behind them (expired and swept by
    /// another node, or left by a crash). Uploads live on the disk of the <c>media</c> node that
    /// received them, so every <c>media</c> node sweeps its own folder.
    /// </summary>
    public async Task<int> SweepOrphanPartsAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(media.UploadFolder))
        {
            return 0;
        }
        var swept = 0;
        var cutoff = DateTime.UtcNow - TimeSpan.FromMinutes(10);
        await using var connection = await database.OpenAsync(cancellationToken);
        foreach (var part in Directory.EnumerateFiles(media.UploadFolder, "*.part"))
        {
            if (File.GetLastWriteTimeUtc(part) > cutoff || !Guid.TryParseExact(Path.GetFileNameWithoutExtension(part), "N", out var guid))
            {
                continue;
            }
            var live = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM media_uploads WHERE id = @id AND expires_at > @now AND asset_id IS NULL",
                new { id = guid.ToString(), now = Now }, cancellationToken: cancellationToken));
            if (live == 0)
            {
                MediaService.TryDelete(part);
                swept++;
            }
        }
        return swept;
    }

    /// <summary>Deletes expired uploads and their bytes. Returns how many.</summary>
    public async Task<int> SweepExpiredAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var expired = (await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT id FROM media_uploads WHERE expires_at <= @now LIMIT 1000", new { now = Now }, cancellationToken: cancellationToken))).ToList();
        foreach (var id in expired)
        {
            await DeleteAsync(id, cancellationToken);
        }
        return expired.Count;
    }
}

internal sealed class UploadRow
{
    public string Id { get; set; } = "";
    public string Owner { get; set; } = "";
    public long Length { get; set; }
    public long Offset { get; set; }
    public string? Filename { get; set; }
    public string? Title { get; set; }
    public string Tags { get; set; } = "[]";
    public long ExpiresAt { get; set; }
    public string? AssetId { get; set; }
}

/// <summary>Every <c>media</c> node: expired uploads and orphaned part files, every <see cref="MediaOptions.PolicyInterval"/>.</summary>
internal sealed partial class UploadSweeper(UploadStore uploads, Microsoft.Extensions.Options.IOptions<MediaOptions> options, Microsoft.Extensions.Logging.ILogger<UploadSweeper> logger)
    : Microsoft.Extensions.Hosting.BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PolicyInterval);
        do
        {
            try
            {
                await uploads.SweepExpiredAsync(stoppingToken);
                await uploads.SweepOrphanPartsAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogSweepFailed(logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Error, Message = "Sweeping expired uploads failed")]
    private static partial void LogSweepFailed(Microsoft.Extensions.Logging.ILogger logger, Exception exception);
}
