using System.Text.Json;
using Dapper;

namespace Fundament.Media.Uploads;

/// <summary>
/// Uploads in progress (table <c>media_uploads</c>): who, how long, how far. Their bytes are kept
/// by <see cref="IUploadParts"/>, on this node's disk or in the shared hot store.
/// </summary>
internal sealed class UploadStore(IDatabase database, TimeProvider time, MediaService media, IUploadParts parts)
{
    private const string Columns = "id AS Id, owner AS Owner, length AS Length, upload_offset AS Offset, filename AS Filename, title AS Title, tags AS Tags, expires_at AS ExpiresAt, asset_id AS AssetId";

    /// <summary>How long one request may take to turn a complete upload into an asset before another may try.</summary>
    public static readonly TimeSpan FinishClaim = TimeSpan.FromHours(1);

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    private long ExpiresAt => Now + (long)media.Options.UploadExpiry.TotalMilliseconds;

    public IUploadParts Parts => parts;

    public async Task<UploadRow> CreateAsync(string owner, long length, string? filename, string? title, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        var row = new UploadRow { Id = Guid.CreateVersion7().ToString(), Owner = owner, Length = length, Filename = filename, Title = title, Tags = JsonSerializer.Serialize(tags), ExpiresAt = ExpiresAt };
        await parts.CreateAsync(row.Id, cancellationToken);
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

    /// <summary>
    /// Moves the upload from <paramref name="from"/> to <paramref name="to"/> and extends its expiry;
    /// <paramref name="also"/> runs in the same transaction when the move happened. Returns the new
    /// expiry, or null when the upload is no longer at <paramref name="from"/> (another request moved it).
    /// </summary>
    public Task<long?> AdvanceAsync(string id, long from, long to, CancellationToken cancellationToken, Func<System.Data.Common.DbConnection, System.Data.Common.DbTransaction, Task>? also = null)
    {
        var expires = ExpiresAt;
        return database.InTransactionAsync<long?>(async (connection, transaction) =>
        {
            var moved = await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE media_uploads SET upload_offset = @to, expires_at = @expires WHERE id = @id AND upload_offset = @from",
                new { id, from, to, expires }, transaction, cancellationToken: cancellationToken));
            if (moved == 0)
            {
                return null;
            }
            if (also is not null)
            {
                await also(connection, transaction);
            }
            return expires;
        }, cancellationToken);
    }

    /// <summary>Whether the upload is still at <paramref name="offset"/> (checked again once a writer holds the bytes).</summary>
    public async Task<bool> IsAtAsync(string id, long offset, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM media_uploads WHERE id = @id AND upload_offset = @offset AND asset_id IS NULL", new { id, offset }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>
    /// Claims the right to turn the complete upload into an asset, for <see cref="FinishClaim"/>
    /// (a finisher that dies lets the next one in after it). Returns the claim's token, or null
    /// while another request holds it.
    /// </summary>
    public async Task<string?> TryClaimFinishAsync(string id, CancellationToken cancellationToken)
    {
        var token = Guid.NewGuid().ToString("N");
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE media_uploads SET finishing_until = @until, finishing_by = @token
            WHERE id = @id AND asset_id IS NULL AND (finishing_until IS NULL OR finishing_until < @now)
            """, new { id, token, until = Now + (long)FinishClaim.TotalMilliseconds, now = Now }, cancellationToken: cancellationToken)) == 1 ? token : null;
    }

    /// <summary>Gives the claim up, if it is still this <paramref name="token"/>'s (a finisher that overran must not free its successor's).</summary>
    public async Task ReleaseFinishAsync(string id, string token, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE media_uploads SET finishing_until = NULL, finishing_by = NULL WHERE id = @id AND finishing_by = @token", new { id, token }, cancellationToken: cancellationToken));
    }

    /// <summary>Records the asset, if the claim is still <paramref name="token"/>'s. False when a successor took it over.</summary>
    public async Task<bool> CompleteAsync(string id, string assetId, string token, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE media_uploads SET asset_id = @assetId, finishing_until = NULL, finishing_by = NULL WHERE id = @id AND finishing_by = @token AND asset_id IS NULL",
            new { id, assetId, token }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await parts.DeleteAsync(id, cancellationToken);
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM media_uploads WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>Whether an upload is still waiting for bytes (not expired, not complete).</summary>
    public async Task<bool> IsLiveAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM media_uploads WHERE id = @id AND expires_at > @now AND asset_id IS NULL",
            new { id, now = Now }, cancellationToken: cancellationToken)) > 0;
    }

    /// <summary>Bytes no live upload owns: left by a crash, or by an upload that expired or finished elsewhere.</summary>
    public Task<int> SweepOrphanPartsAsync(CancellationToken cancellationToken) => parts.SweepOrphansAsync(this, cancellationToken);

    /// <summary>Deletes expired uploads and their bytes. Returns how many.</summary>
    public async Task<int> SweepExpiredAsync(CancellationToken cancellationToken)
    {
        List<string> expired;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            expired = (await connection.QueryAsync<string>(new CommandDefinition(
                "SELECT id FROM media_uploads WHERE expires_at <= @now LIMIT 1000", new { now = Now }, cancellationToken: cancellationToken))).ToList();
        }
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

/// <summary>Every <c>media</c> node: expired uploads and orphaned bytes, every <see cref="MediaOptions.PolicyInterval"/>.</summary>
internal sealed partial class UploadSweeper(UploadStore uploads, IOptions<MediaOptions> options, ILogger<UploadSweeper> logger)
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Sweeping expired uploads failed")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
