using System.Data.Common;
using System.Text.Json;
using Dapper;

namespace Fundament.Media;

/// <summary>Assets, their history, derivatives, tags and shares (tables <c>media_*</c>).</summary>
internal sealed class MediaStore(IDatabase database, TimeProvider time)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerOptions.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    private const string Columns = """
        id AS Id, owner AS Owner, sha256 AS Sha256, size AS Size, kind AS Kind, mime AS Mime, filename AS Filename, title AS Title, tags AS Tags,
        state AS State, tier AS Tier, legal_hold AS LegalHold, failure_reason AS FailureReason, metadata AS Metadata, taken_at AS TakenAt,
        created_at AS CreatedAt, updated_at AS UpdatedAt, processed_at AS ProcessedAt, processing_ms AS ProcessingMs, trashed_at AS TrashedAt,
        previous_state AS PreviousState
        """;

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Adds an asset for content already in the store, or returns the owner's existing asset with
    /// the same content (Created = false).
    /// </summary>
    public async Task<(AssetRow Asset, bool Created)> CreateOrGetAsync(NewAsset asset, string? actor, CancellationToken cancellationToken)
    {
        if (await FindByContentAsync(asset.Owner, asset.Sha256, cancellationToken) is { } existing)
        {
            return (existing, false);
        }
        var id = Guid.CreateVersion7().ToString();
        var now = Now;
        try
        {
            await database.InTransactionAsync(async (connection, transaction) =>
            {
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO media_assets (id, owner, sha256, size, kind, mime, filename, title, tags, state, tier, legal_hold, search, created_at, updated_at)
                    VALUES (@id, @Owner, @Sha256, @Size, @Kind, @Mime, @Filename, @Title, @tags, 'uploaded', 'hot', FALSE, @search, @now, @now)
                    """, new
                {
                    id, asset.Owner, asset.Sha256, asset.Size, asset.Kind, asset.Mime, asset.Filename, asset.Title,
                    tags = JsonSerializer.Serialize(asset.Tags), search = SearchText(asset.Title, asset.Tags, asset.Filename), now,
                }, transaction, cancellationToken: cancellationToken));
                await WriteTagsAsync(connection, transaction, id, asset.Tags, cancellationToken);
                await AddHistoryAsync(connection, transaction, id, null, MediaState.Uploaded, actor, "uploaded", now, cancellationToken);
                return 0;
            }, cancellationToken);
        }
        catch (DbException ex) when (database.Dialect.IsUniqueViolation(ex))
        {
            // The same owner uploaded the same content twice at once: the other request won.
            if (await FindByContentAsync(asset.Owner, asset.Sha256, cancellationToken) is { } raced)
            {
                return (raced, false);
            }
            throw;
        }
        return ((await GetAsync(id, cancellationToken))!, true);
    }

    public async Task<AssetRow?> FindByContentAsync(string owner, string sha256, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<AssetRow>(new CommandDefinition(
            $"SELECT {Columns} FROM media_assets WHERE owner = @owner AND sha256 = @sha256", new { owner, sha256 }, cancellationToken: cancellationToken));
    }

    public async Task<AssetRow?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<AssetRow>(new CommandDefinition(
            $"SELECT {Columns} FROM media_assets WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Moves an asset from one of <paramref name="from"/> to <paramref name="to"/> and records it;
    /// false when the asset is not in one of those states (someone else moved it first).
    /// </summary>
    public async Task<bool> TransitionAsync(string id, IReadOnlyCollection<string> from, string to, string? actor, string? reason, CancellationToken cancellationToken, AssetTransition? changes = null)
    {
        var now = Now;
        changes ??= new AssetTransition();
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            var current = await connection.QuerySingleOrDefaultAsync<string?>(database.Command("SELECT state FROM media_assets WHERE id = @id{for_update}", new { id }, transaction, cancellationToken: cancellationToken));
            if (current is null || !from.Contains(current))
            {
                return false;
            }
            var parameters = new DynamicParameters(new { id, to, now, previous = current, tier = changes.Tier, pendingEvent = changes.PendingEvent, failure = changes.Failure });
            var assignments = new List<string> { "state = @to", "updated_at = @now" };
            if (changes.Tier is not null)
            {
                assignments.Add("tier = @tier");
            }
            if (changes.PendingEvent is not null)
            {
                assignments.Add("pending_event = @pendingEvent");
            }
            if (changes.Failure is not null || changes.ClearsFailure)
            {
                assignments.Add("failure_reason = @failure");
            }
            if (to == MediaState.Trashed)
            {
                assignments.Add("trashed_at = @now");
                assignments.Add("previous_state = @previous");
            }
            else if (current == MediaState.Trashed)
            {
                assignments.Add("trashed_at = NULL");
            }
            await connection.ExecuteAsync(new CommandDefinition(
                $"UPDATE media_assets SET {string.Join(", ", assignments)} WHERE id = @id", parameters, transaction, cancellationToken: cancellationToken));
            await AddHistoryAsync(connection, transaction, id, current, to, actor, reason, now, cancellationToken);
            return true;
        }, cancellationToken);
    }

    /// <summary>Marks the event as sent, unless a newer transition replaced it meanwhile.</summary>
    public async Task ClearPendingEventAsync(string id, string eventName, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE media_assets SET pending_event = NULL WHERE id = @id AND pending_event = @eventName", new { id, eventName }, cancellationToken: cancellationToken));
    }

    /// <summary>Events still pending on assets last changed before <paramref name="before"/>.</summary>
    public async Task<IReadOnlyList<(string Id, string Event)>> PendingEventsAsync(DateTimeOffset before, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<(string, string)>(new CommandDefinition(
            "SELECT id, pending_event FROM media_assets WHERE pending_event IS NOT NULL AND updated_at < @before ORDER BY updated_at LIMIT @limit",
            new { before = before.ToUnixTimeMilliseconds(), limit }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task UpsertDerivativeAsync(string assetId, DerivativeRow derivative, CancellationToken cancellationToken)
    {
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM media_derivatives WHERE asset_id = @assetId AND name = @Name",
                new { assetId, derivative.Name }, transaction, cancellationToken: cancellationToken));
            return await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO media_derivatives (asset_id, name, blob_key, mime, width, height, size) VALUES (@assetId, @Name, @BlobKey, @Mime, @Width, @Height, @Size)
                """, new { assetId, derivative.Name, derivative.BlobKey, derivative.Mime, derivative.Width, derivative.Height, derivative.Size }, transaction, cancellationToken: cancellationToken));
        }, cancellationToken);
    }

    public async Task<IReadOnlyList<DerivativeRow>> DerivativesAsync(string assetId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<DerivativeRow>(new CommandDefinition(
            "SELECT name AS Name, blob_key AS BlobKey, mime AS Mime, width AS Width, height AS Height, size AS Size FROM media_derivatives WHERE asset_id = @assetId ORDER BY name",
            new { assetId }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task<IReadOnlyList<HistoryEntry>> HistoryAsync(string assetId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(long At, string? From, string To, string? Actor, string? Reason)>(new CommandDefinition(
            "SELECT at, from_state, to_state, actor, reason FROM media_history WHERE asset_id = @assetId ORDER BY at, id", new { assetId }, cancellationToken: cancellationToken));
        return rows.Select(r => new HistoryEntry(DateTimeOffset.FromUnixTimeMilliseconds(r.At), r.From, r.To, r.Actor, r.Reason)).ToList();
    }

    public async Task<IReadOnlyList<string>> SharesAsync(string assetId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT user_id FROM media_shares WHERE asset_id = @assetId ORDER BY user_id", new { assetId }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task<bool> IsSharedWithAsync(string assetId, string userId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM media_shares WHERE asset_id = @assetId AND user_id = @userId", new { assetId, userId }, cancellationToken: cancellationToken)) > 0;
    }

    /// <summary>Applies a PATCH in one transaction.</summary>
    public async Task PatchAsync(AssetRow asset, MediaPatch patch, CancellationToken cancellationToken)
    {
        var now = Now;
        var title = patch.Title is null ? asset.Title : patch.Title.Length == 0 ? null : patch.Title;
        var tags = patch.Tags?.ToList() ?? asset.TagList;
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                UPDATE media_assets SET title = @title, tags = @tagsJson, legal_hold = @hold, search = @search, updated_at = @now WHERE id = @id
                """, new
            {
                id = asset.Id, title, tagsJson = JsonSerializer.Serialize(tags), hold = patch.LegalHold ?? asset.LegalHold,
                search = SearchText(title, tags, asset.Filename), now,
            }, transaction, cancellationToken: cancellationToken));
            if (patch.Tags is not null)
            {
                await connection.ExecuteAsync(new CommandDefinition("DELETE FROM media_tags WHERE asset_id = @id", new { id = asset.Id }, transaction, cancellationToken: cancellationToken));
                await WriteTagsAsync(connection, transaction, asset.Id, tags, cancellationToken);
            }
            if (patch.SharedWith is not null)
            {
                await connection.ExecuteAsync(new CommandDefinition("DELETE FROM media_shares WHERE asset_id = @id", new { id = asset.Id }, transaction, cancellationToken: cancellationToken));
                foreach (var user in patch.SharedWith.Distinct(StringComparer.Ordinal))
                {
                    await connection.ExecuteAsync(new CommandDefinition("INSERT INTO media_shares (asset_id, user_id) VALUES (@id, @user)",
                        new { id = asset.Id, user }, transaction, cancellationToken: cancellationToken));
                }
            }
            return 0;
        }, cancellationToken);
    }

    /// <summary>Stores the outcome of processing: metadata and indexed fields; the state change is a separate transition.</summary>
    public async Task SaveMetadataAsync(string id, MediaMetadata metadata, long processingMs, CancellationToken cancellationToken)
    {
        long? takenAt = null;
        if (metadata.TakenAt is { } text && DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AssumeUniversal, out var parsed))
        {
            takenAt = parsed.ToUnixTimeMilliseconds();
        }
        var camera = string.Join(' ', new[] { metadata.CameraMake, metadata.CameraModel }.Where(s => !string.IsNullOrWhiteSpace(s))).ToLowerInvariant();
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE media_assets SET metadata = @metadata, taken_at = @takenAt, camera = @camera, meta_search = @metaSearch, processing_ms = @processingMs, processed_at = @now WHERE id = @id
            """, new { id, metadata = JsonSerializer.Serialize(metadata, Json), takenAt, camera = camera.Length == 0 ? null : camera, metaSearch = MetaSearch(metadata), processingMs, now = Now },
            cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<AssetRow>> ListAsync(MediaQuery query, CancellationToken cancellationToken)
    {
        var where = new List<string>();
        var parameters = new DynamicParameters();
        if (query.Owner is not null)
        {
            where.Add(query.SharedWith is not null
                ? "(owner = @owner OR id IN (SELECT asset_id FROM media_shares WHERE user_id = @sharedWith))"
                : "owner = @owner");
            parameters.Add("owner", query.Owner);
            parameters.Add("sharedWith", query.SharedWith);
        }
        if (query.Type is not null)
        {
            where.Add("kind = @type");
            parameters.Add("type", query.Type);
        }
        if (query.State is not null)
        {
            where.Add("state = @state");
            parameters.Add("state", query.State);
        }
        else
        {
            // The trash is only listed when asked for.
            where.Add("state <> 'trashed'");
        }
        if (query.Tag is not null)
        {
            where.Add("id IN (SELECT asset_id FROM media_tags WHERE tag = @tag)");
            parameters.Add("tag", query.Tag.ToLowerInvariant());
        }
        if (query.TakenFrom is { } from)
        {
            where.Add("taken_at >= @takenFrom");
            parameters.Add("takenFrom", from.ToUnixTimeMilliseconds());
        }
        if (query.TakenTo is { } to)
        {
            where.Add("taken_at < @takenTo");
            parameters.Add("takenTo", to.ToUnixTimeMilliseconds());
        }
        if (query.Camera is not null)
        {
            where.Add("camera LIKE @camera ESCAPE '\\'");
            parameters.Add("camera", "%" + Like(query.Camera.ToLowerInvariant()) + "%");
        }
        if (query.Text is not null)
        {
            where.Add("(search LIKE @text ESCAPE '\\' OR meta_search LIKE @text ESCAPE '\\')");
            parameters.Add("text", "%" + Like(query.Text.ToLowerInvariant()) + "%");
        }
        if (query.After is not null)
        {
            where.Add("id < @after");
            parameters.Add("after", query.After);
        }
        parameters.Add("limit", query.Limit);
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<AssetRow>(new CommandDefinition(
            $"SELECT {Columns} FROM media_assets WHERE {(where.Count == 0 ? "1 = 1" : string.Join(" AND ", where))} ORDER BY id DESC LIMIT @limit",
            parameters, cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>Assets a policy applies to: in <paramref name="state"/>, older than <paramref name="before"/>, of a type and tag when given, not on hold.</summary>
    public async Task<IReadOnlyList<AssetRow>> PolicyCandidatesAsync(string state, long before, string? kind, string? tag, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<AssetRow>(new CommandDefinition($"""
            SELECT {Columns} FROM media_assets
            WHERE state = @state AND created_at < @before AND legal_hold = FALSE
              AND (@kind IS NULL OR kind = @kind)
              AND (@tag IS NULL OR id IN (SELECT asset_id FROM media_tags WHERE tag = @tag))
            ORDER BY created_at LIMIT @limit
            """, new { state, before, kind, tag, limit }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task<IReadOnlyList<AssetRow>> TrashExpiredAsync(long before, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<AssetRow>(new CommandDefinition(
            $"SELECT {Columns} FROM media_assets WHERE state = 'trashed' AND trashed_at < @before AND legal_hold = FALSE ORDER BY trashed_at LIMIT @limit",
            new { before, limit }, cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>Deletes the asset row (history, derivatives, tags and shares go with it); true when it was still trashed and not on hold.</summary>
    public async Task<bool> DeleteTrashedAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM media_assets WHERE id = @id AND state = 'trashed' AND legal_hold = FALSE", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>How many assets on <paramref name="tier"/> still use this content (any owner).</summary>
    public async Task<long> ContentUsersAsync(string sha256, string tier, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM media_assets WHERE sha256 = @sha256 AND tier = @tier", new { sha256, tier }, cancellationToken: cancellationToken));
    }

    public async Task<MediaStats> StatsAsync(string? owner, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var buckets = (await connection.QueryAsync<(string Kind, string State, long Count, long Bytes)>(new CommandDefinition(
            "SELECT kind, state, COUNT(*), COALESCE(SUM(size), 0) FROM media_assets WHERE (@owner IS NULL OR owner = @owner) GROUP BY kind, state ORDER BY kind, state",
            new { owner }, cancellationToken: cancellationToken))).Select(b => new StatsBucket(b.Kind, b.State, b.Count, b.Bytes)).ToList();
        var processed = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM media_assets WHERE processing_ms IS NOT NULL AND (@owner IS NULL OR owner = @owner)", new { owner }, cancellationToken: cancellationToken));
        double? p50 = null, p95 = null;
        if (processed > 0)
        {
            p50 = await PercentileAsync(connection, owner, processed, 0.50, cancellationToken);
            p95 = await PercentileAsync(connection, owner, processed, 0.95, cancellationToken);
        }
        var failed = buckets.Where(b => b.State == MediaState.Failed).Sum(b => b.Count);
        var finished = failed + buckets.Where(b => b.State is MediaState.Ready or MediaState.Archived).Sum(b => b.Count);
        return new MediaStats(buckets, buckets.Sum(b => b.Count), buckets.Sum(b => b.Bytes), p50, p95, finished == 0 ? 0 : (double)failed / finished);
    }

    private static async Task<double> PercentileAsync(DbConnection connection, string? owner, long count, double p, CancellationToken cancellationToken) =>
        await connection.ExecuteScalarAsync<long>(new CommandDefinition("""
            SELECT processing_ms FROM media_assets WHERE processing_ms IS NOT NULL AND (@owner IS NULL OR owner = @owner)
            ORDER BY processing_ms LIMIT 1 OFFSET @offset
            """, new { owner, offset = (long)Math.Min(count - 1, Math.Ceiling(p * count) - 1) }, cancellationToken: cancellationToken));

    private static async Task WriteTagsAsync(DbConnection connection, DbTransaction transaction, string id, IEnumerable<string> tags, CancellationToken cancellationToken)
    {
        foreach (var tag in tags.Select(t => t.ToLowerInvariant()).Distinct(StringComparer.Ordinal))
        {
            await connection.ExecuteAsync(new CommandDefinition("INSERT INTO media_tags (asset_id, tag) VALUES (@id, @tag)", new { id, tag }, transaction, cancellationToken: cancellationToken));
        }
    }

    private static Task AddHistoryAsync(DbConnection connection, DbTransaction transaction, string id, string? from, string to, string? actor, string? reason, long now, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO media_history (id, asset_id, at, from_state, to_state, actor, reason) VALUES (@hid, @id, @now, @from, @to, @actor, @reason)
            """, new { hid = Guid.CreateVersion7().ToString(), id, now, from, to, actor, reason }, transaction, cancellationToken: cancellationToken));

    private static string SearchText(string? title, IEnumerable<string> tags, string? filename) =>
        string.Join(' ', new[] { title, filename }.Concat(tags).Where(s => !string.IsNullOrWhiteSpace(s))).ToLowerInvariant();

    /// <summary>The normalized fields and raw tag values, lower-cased, for text search (at most 8,000 characters).</summary>
    private static string? MetaSearch(MediaMetadata metadata)
    {
        var text = string.Join(' ', new[] { metadata.CameraMake, metadata.CameraModel, metadata.Lens, metadata.Title, metadata.Author, metadata.VideoCodec, metadata.AudioCodec }
            .Concat(metadata.Raw.Values).Where(v => !string.IsNullOrWhiteSpace(v))).ToLowerInvariant();
        return text.Length == 0 ? null : text.Length > 8000 ? text[..8000] : text;
    }

    private static string Like(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);
}

internal sealed record NewAsset(string Owner, string Sha256, long Size, string Kind, string Mime, string? Filename, string? Title, IReadOnlyList<string> Tags);

internal sealed record MediaQuery(string? Owner, string? SharedWith, string? Type, string? State, string? Tag, DateTimeOffset? TakenFrom, DateTimeOffset? TakenTo, string? Camera, string? Text, string? After, int Limit);

/// <summary>What a state transition changes besides the state (and the trash bookkeeping the store does itself).</summary>
internal sealed record AssetTransition
{
    /// <summary>The tier the asset's original now lives in (<see cref="MediaTier"/>).</summary>
    public string? Tier { get; init; }

    /// <summary>The event to publish once the transition is committed (the outbox; see <see cref="MediaService.PublishAfterAsync"/>).</summary>
    public string? PendingEvent { get; init; }

    /// <summary>Why processing failed, shown to the owner.</summary>
    public string? Failure { get; init; }

    /// <summary>Forget an earlier failure (the asset processed after all).</summary>
    public bool ClearsFailure { get; init; }
}

internal sealed class DerivativeRow
{
    public string Name { get; set; } = "";
    public string BlobKey { get; set; } = "";
    public string Mime { get; set; } = "";
    public long? Width { get; set; }
    public long? Height { get; set; }
    public long Size { get; set; }
}

internal sealed class AssetRow
{
    public string Id { get; set; } = "";
    public string Owner { get; set; } = "";
    public string Sha256 { get; set; } = "";
    public long Size { get; set; }
    public string Kind { get; set; } = "";
    public string Mime { get; set; } = "";
    public string? Filename { get; set; }
    public string? Title { get; set; }
    public string Tags { get; set; } = "[]";
    public string State { get; set; } = "";
    public string Tier { get; set; } = "";
    public bool LegalHold { get; set; }
    public string? FailureReason { get; set; }
    public string? Metadata { get; set; }
    public long? TakenAt { get; set; }
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }
    public long? ProcessedAt { get; set; }
    public long? ProcessingMs { get; set; }
    public long? TrashedAt { get; set; }
    public string? PreviousState { get; set; }

    public List<string> TagList => JsonSerializer.Deserialize<List<string>>(Tags) ?? [];

    public MediaResponse ToResponse(IReadOnlyList<DerivativeRow>? derivatives = null, IReadOnlyList<HistoryEntry>? history = null, IReadOnlyList<string>? shares = null) => new(
        Id, Sha256, State, Kind, Mime, Size, Filename, Title, TagList, LegalHold, Tier, Owner, FailureReason,
        DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt),
        TrashedAt is { } t ? DateTimeOffset.FromUnixTimeMilliseconds(t) : null,
        Metadata is null ? null : JsonSerializer.Deserialize<MediaMetadata>(Metadata, MediaStore.Json),
        derivatives?.Select(d => new DerivativeResponse(d.Name, d.Mime, (int?)d.Width, (int?)d.Height, d.Size, $"/api/v1/media/{Id}/derivatives/{d.Name}")).ToList(),
        history, shares);
}
