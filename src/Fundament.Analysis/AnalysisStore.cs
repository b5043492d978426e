using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;

namespace Fundament.Analysis;

/// <summary>
/// Stage rows (<c>analysis_stages</c>), the searchable text per asset (<c>analysis_documents</c>, with
/// an FTS5 index on SQLite and a tsvector on PostgreSQL) and embeddings (<c>analysis_embeddings</c>).
/// A stage row carries a generation: a retry bumps it, so a job of an earlier generation that still
/// runs cannot overwrite the newer outcome.
/// </summary>
internal sealed class AnalysisStore(IDatabase database, TimeProvider time)
{
    private const string StageColumns = """
        asset_id AS AssetId, stage AS Stage, state AS State, generation AS Generation, attempts AS Attempts, reason AS Reason,
        result AS Result, model AS Model, job_id AS JobId, created_at AS CreatedAt, started_at AS StartedAt, finished_at AS FinishedAt
        """;

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The asset's state in media's table (ADR 0021), or null when there is no such asset.</summary>
    public async Task<string?> AssetStateAsync(string assetId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<string?>(database.Command("SELECT state FROM media_assets WHERE id = @assetId", new { assetId }, cancellationToken: cancellationToken));
    }

    /// <summary>Creates the stage rows an asset does not have yet; returns the stages created.</summary>
    public async Task<IReadOnlyList<string>> CreateStagesAsync(string assetId, IReadOnlyList<string> stages, CancellationToken cancellationToken)
    {
        var created = new List<string>();
        await using var connection = await database.OpenAsync(cancellationToken);
        foreach (var stage in stages)
        {
            var rows = await connection.ExecuteAsync(database.Command("""
                INSERT INTO analysis_stages (asset_id, stage, state, generation, attempts, created_at)
                VALUES (@assetId, @stage, 'pending', 1, 0, @now) ON CONFLICT (asset_id, stage) DO NOTHING
                """, new { assetId, stage, now = Now }, cancellationToken: cancellationToken));
            if (rows > 0)
            {
                created.Add(stage);
            }
        }
        return created;
    }

    public async Task<IReadOnlyList<StageRow>> StagesAsync(string assetId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return [.. await connection.QueryAsync<StageRow>(database.Command($"SELECT {StageColumns} FROM analysis_stages WHERE asset_id = @assetId", new { assetId }, cancellationToken: cancellationToken))];
    }

    public async Task<StageRow?> StageAsync(string assetId, string stage, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<StageRow>(database.Command(
            $"SELECT {StageColumns} FROM analysis_stages WHERE asset_id = @assetId AND stage = @stage", new { assetId, stage }, cancellationToken: cancellationToken));
    }

    /// <summary>Marks the stage running for this attempt; false when the job belongs to an earlier generation or the stage is done.</summary>
    public async Task<bool> StartAsync(string assetId, string stage, int generation, string jobId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(database.Command("""
            UPDATE analysis_stages SET state = 'running', attempts = attempts + 1, job_id = @jobId, started_at = @now, finished_at = NULL
            WHERE asset_id = @assetId AND stage = @stage AND generation = @generation AND state IN ('pending', 'running')
            """, new { assetId, stage, generation, jobId, now = Now }, cancellationToken: cancellationToken)) > 0;
    }

    /// <summary>Records what the attempt that will be retried ran into.</summary>
    public async Task NoteAsync(string assetId, string stage, int generation, string jobId, string reason, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(database.Command(
            "UPDATE analysis_stages SET reason = @reason WHERE asset_id = @assetId AND stage = @stage AND generation = @generation AND state = 'running' AND job_id = @jobId",
            new { assetId, stage, generation, jobId, reason = Clip(reason) }, cancellationToken: cancellationToken));
    }

    /// <summary>Ends the stage (succeeded, failed or skipped); false when a retry has started a newer generation meanwhile.</summary>
    public async Task<bool> FinishAsync(string assetId, string stage, int generation, string state, string? reason, JsonNode? result, string? model, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(database.Command("""
            UPDATE analysis_stages SET state = @state, reason = @reason, result = @result, model = @model, finished_at = @now
            WHERE asset_id = @assetId AND stage = @stage AND generation = @generation AND state IN ('pending', 'running')
            """, new { assetId, stage, generation, state, reason = reason is null ? null : Clip(reason), result = result?.ToJsonString(), model, now = Now },
            cancellationToken: cancellationToken)) > 0;
    }

    /// <summary>
    /// Starts the stage over (a new generation, pending, no attempts); null unless it was in one of
    /// <paramref name="states"/> (by default: it had ended).
    /// </summary>
    public async Task<int?> ResetAsync(string assetId, string stage, CancellationToken cancellationToken, IReadOnlyList<string>? states = null)
    {
        states ??= [StageState.Succeeded, StageState.Failed, StageState.Skipped];
        await using var connection = await database.OpenAsync(cancellationToken);
        var generation = await connection.ExecuteScalarAsync<long?>(database.Command($"""
            UPDATE analysis_stages SET state = 'pending', generation = generation + 1, attempts = 0, reason = NULL, result = NULL, model = NULL,
                job_id = NULL, started_at = NULL, finished_at = NULL
            WHERE asset_id = @assetId AND stage = @stage AND {database.Dialect.InList("state", "states")}
            RETURNING generation
            """, new { assetId, stage, states = states.ToArray() }, cancellationToken: cancellationToken));
        return generation is null ? null : (int)generation.Value;
    }

    public async Task SetJobAsync(string assetId, string stage, int generation, string jobId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(database.Command(
            "UPDATE analysis_stages SET job_id = @jobId WHERE asset_id = @assetId AND stage = @stage AND generation = @generation",
            new { assetId, stage, generation, jobId }, cancellationToken: cancellationToken));
    }

    /// <summary>Replaces the asset's searchable text (the index follows in the same statement).</summary>
    public async Task SaveDocumentAsync(string assetId, string body, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(database.Command("""
            INSERT INTO analysis_documents (asset_id, body, updated_at) VALUES (@assetId, @body, @now)
            ON CONFLICT (asset_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at
            """, new { assetId, body, now = Now }, cancellationToken: cancellationToken));
    }

    public async Task SaveEmbeddingAsync(string assetId, string model, float[] vector, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(database.Command("""
            INSERT INTO analysis_embeddings (asset_id, model, vector, updated_at) VALUES (@assetId, @model, @vector, @now)
            ON CONFLICT (asset_id) DO UPDATE SET model = excluded.model, vector = excluded.vector, updated_at = excluded.updated_at
            """, new { assetId, model, vector = MemoryMarshal.AsBytes(vector.AsSpan()).ToArray(), now = Now }, cancellationToken: cancellationToken));
    }

    public async Task<(string Model, float[] Vector)?> EmbeddingAsync(string assetId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<EmbeddingRow>(database.Command(
            "SELECT asset_id AS AssetId, model AS Model, vector AS Vector FROM analysis_embeddings WHERE asset_id = @assetId", new { assetId }, cancellationToken: cancellationToken));
        return row is null ? null : (row.Model, MemoryMarshal.Cast<byte, float>(row.Vector).ToArray());
    }

    /// <summary>
    /// The <paramref name="limit"/> assets the caller may see whose embedding (same model) is closest to
    /// <paramref name="vector"/>, by cosine similarity (vectors are stored unit length, so a dot product).
    /// Read in pages and scored as they stream, so memory stays at one page whatever the library's size.
    /// </summary>
    public async Task<IReadOnlyList<(string AssetId, string? Filename, double Score)>> NearestAsync(
        string assetId, string model, float[] vector, Visibility visibility, int limit, CancellationToken cancellationToken)
    {
        var best = new PriorityQueue<(string AssetId, string? Filename, double Score), double>();
        var after = "";
        await using var connection = await database.OpenAsync(cancellationToken);
        while (true)
        {
            var page = (await connection.QueryAsync<EmbeddingRow>(database.Command($"""
                SELECT e.asset_id AS AssetId, a.filename AS Filename, e.model AS Model, e.vector AS Vector FROM analysis_embeddings e JOIN media_assets a ON a.id = e.asset_id
                WHERE e.model = @model AND e.asset_id <> @assetId AND e.asset_id > @after AND a.state IN ('ready', 'archived') AND {visibility.Sql("a")}
                ORDER BY e.asset_id LIMIT 1000
                """, visibility.With(new { model, assetId, after }), cancellationToken: cancellationToken))).ToList();
            foreach (var row in page)
            {
                var other = MemoryMarshal.Cast<byte, float>(row.Vector);
                if (other.Length != vector.Length)
                {
                    continue;
                }
                var score = Dot(vector, other);
                best.Enqueue((row.AssetId, row.Filename, score), score);
                if (best.Count > limit)
                {
                    best.Dequeue();
                }
            }
            if (page.Count < 1000)
            {
                break;
            }
            after = page[^1].AssetId;
        }
        var result = new List<(string, string?, double)>(best.Count);
        while (best.Count > 0)
        {
            result.Add(best.Dequeue());
        }
        result.Reverse();
        return result;
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var sum = System.Numerics.Vector<float>.Zero;
        var i = 0;
        for (; i <= a.Length - System.Numerics.Vector<float>.Count; i += System.Numerics.Vector<float>.Count)
        {
            sum += new System.Numerics.Vector<float>(a[i..]) * new System.Numerics.Vector<float>(b[i..]);
        }
        var total = System.Numerics.Vector.Sum(sum);
        for (; i < a.Length; i++)
        {
            total += a[i] * b[i];
        }
        return total;
    }

    /// <summary>Full-text search over what analysis found, among the assets the caller may see, best first.</summary>
    public async Task<IReadOnlyList<SearchHit>> SearchAsync(string text, Visibility visibility, int limit, CancellationToken cancellationToken)
    {
        var terms = Terms(text);
        if (terms.Count == 0)
        {
            return [];
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        string sql;
        object parameters;
        if (database.Dialect.Name == "sqlite")
        {
            // Every word must occur (quoted: nothing the caller types is FTS5 syntax); prefix match on the last one.
            var match = string.Join(' ', terms.Select((t, i) => "\"" + t.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" + (i == terms.Count - 1 ? "*" : "")));
            sql = $"""
                SELECT d.asset_id AS AssetId, a.filename AS Filename, a.state AS State, CAST(snippet(analysis_search, 0, '[', ']', '…', 12) AS TEXT) AS Snippet, CAST(-bm25(analysis_search) AS REAL) AS Rank
                FROM analysis_search JOIN analysis_documents d ON d.seq = analysis_search.rowid JOIN media_assets a ON a.id = d.asset_id
                WHERE analysis_search MATCH @match AND a.state <> 'trashed' AND {visibility.Sql("a")}
                ORDER BY bm25(analysis_search) LIMIT @limit
                """;
            parameters = visibility.With(new { match, limit });
        }
        else
        {
            var query = string.Join(" & ", terms.Select((t, i) => "'" + t.Replace("'", "''", StringComparison.Ordinal).Replace("\\", "\\\\", StringComparison.Ordinal) + "'" + (i == terms.Count - 1 ? ":*" : "")));
            sql = $"""
                SELECT d.asset_id AS AssetId, a.filename AS Filename, a.state AS State,
                    ts_headline('simple', d.body, to_tsquery('simple', @query), 'StartSel=[, StopSel=], MaxWords=24, MinWords=6') AS Snippet,
                    CAST(ts_rank(d.tsv, to_tsquery('simple', @query)) AS DOUBLE PRECISION) AS Rank
                FROM analysis_documents d JOIN media_assets a ON a.id = d.asset_id
                WHERE d.tsv @@ to_tsquery('simple', @query) AND a.state <> 'trashed' AND {visibility.Sql("a")}
                ORDER BY Rank DESC, d.asset_id LIMIT @limit
                """;
            parameters = visibility.With(new { query, limit });
        }
        return [.. (await connection.QueryAsync<SearchRow>(database.Command(sql, parameters, cancellationToken: cancellationToken))).Select(r => new SearchHit(r.AssetId, r.Filename, r.State, r.Snippet ?? "", Math.Round(r.Rank, 4)))];
    }

    /// <summary>The words of a query: letters and digits only, at most 16, each at most 64 characters.</summary>
    internal static List<string> Terms(string text)
    {
        var terms = new List<string>();
        var word = new StringBuilder();
        foreach (var c in text.Normalize(NormalizationForm.FormC) + " ")
        {
            if (char.IsLetterOrDigit(c))
            {
                if (word.Length < 64)
                {
                    word.Append(char.ToLowerInvariant(c));
                }
            }
            else if (word.Length > 0)
            {
                terms.Add(word.ToString());
                word.Clear();
                if (terms.Count == 16)
                {
                    break;
                }
            }
        }
        return terms;
    }

    private static string Clip(string text) => text.Length > 2000 ? text[..2000] : text;
}

/// <summary>Which assets a caller may see, as a SQL condition over <c>media_assets</c>: admins all, others their own and what is shared with them.</summary>
internal sealed record Visibility(bool Admin, string Actor, string? Subject)
{
    public string Sql(string alias) => Admin
        ? "1 = 1"
        : $"({alias}.owner = @visActor OR {alias}.id IN (SELECT asset_id FROM media_shares WHERE user_id = @visSubject))";

    public DynamicParameters With(object parameters)
    {
        var all = new DynamicParameters(parameters);
        all.Add("visActor", Actor);
        all.Add("visSubject", Subject ?? "");
        return all;
    }
}

internal sealed class SearchRow
{
    public string AssetId { get; set; } = "";
    public string? Filename { get; set; }
    public string State { get; set; } = "";
    public string? Snippet { get; set; }
    public double Rank { get; set; }
}

internal sealed class EmbeddingRow
{
    public string AssetId { get; set; } = "";
    public string? Filename { get; set; }
    public string Model { get; set; } = "";
    public byte[] Vector { get; set; } = [];
}

internal sealed class StageRow
{
    public string AssetId { get; set; } = "";
    public string Stage { get; set; } = "";
    public string State { get; set; } = "";
    public int Generation { get; set; }
    public int Attempts { get; set; }
    public string? Reason { get; set; }
    public string? Result { get; set; }
    public string? Model { get; set; }
    public string? JobId { get; set; }
    public long CreatedAt { get; set; }
    public long? StartedAt { get; set; }
    public long? FinishedAt { get; set; }

    public StageResponse ToResponse() => new(
        Stage, State, Attempts, Reason, Model, JobId, DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt),
        StartedAt is { } s ? DateTimeOffset.FromUnixTimeMilliseconds(s) : null, FinishedAt is { } f ? DateTimeOffset.FromUnixTimeMilliseconds(f) : null,
        Result is null ? null : JsonNode.Parse(Result));
}
