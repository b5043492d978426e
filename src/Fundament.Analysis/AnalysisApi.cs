using System.Text.Json.Nodes;
using Fundament.Media;

namespace Fundament.Analysis;

/// <summary>
/// Analysis results under the media API: whoever may see an asset may see its analysis and its similar
/// images (among those they may see); whoever may change it may start a stage again.
/// </summary>
internal static class AnalysisApi
{
    public static RouteGroupBuilder MapAnalysisApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/media").WithTags("Analysis").RequireAuthorization(Policies.Authenticated);
        group.MapGet("/{id}/analysis", GetAsync).WithName("GetMediaAnalysis")
            .WithSummary("Each analysis stage of the asset (ocr, caption, embedding, fusion) with its state, attempts, reason and result, and the fused description.");
        group.MapPost("/{id}/analysis/{stage}/retry", RetryAsync).WithName("RetryMediaAnalysisStage")
            .WithSummary("Runs an ended stage again (a failed one, or after the endpoint or model changed); fusion follows when an input ran again. 409 while it is pending or running.");
        group.MapGet("/search", SearchAsync).WithName("SearchMedia")
            .WithSummary("Full-text search over captions, tags, fused descriptions and OCR text of the assets the caller may see, best first, with a snippet.");
        group.MapGet("/{id}/similar", SimilarAsync).WithName("GetSimilarMedia")
            .WithSummary("The assets the caller may see whose pictures are closest to this one's (cosine similarity of image embeddings), with near-duplicates marked.");
        return group;
    }

    private static async Task<(AssetRow? Asset, Caller Caller)> FindAsync(string id, HttpContext context, MediaAccess access, MediaStore media, CancellationToken cancellationToken)
    {
        var caller = await access.CallerAsync(context);
        if (id.Length > 64 || await media.GetAsync(id, cancellationToken) is not { } asset || asset.State == MediaState.Trashed
            || !await access.CanReadAsync(caller, asset, media, cancellationToken))
        {
            return (null, caller);
        }
        return (asset, caller);
    }

    private static async Task<Results<Ok<AnalysisResponse>, ProblemHttpResult>> GetAsync(
        string id, HttpContext context, MediaAccess access, MediaStore media, AnalysisStore store, CancellationToken cancellationToken)
    {
        var (asset, _) = await FindAsync(id, context, access, media, cancellationToken);
        if (asset is null)
        {
            return Problems.NotFound("The asset");
        }
        var stages = (await store.StagesAsync(id, cancellationToken)).OrderBy(s => AnalysisStages.All.ToList().IndexOf(s.Stage)).Select(s => s.ToResponse()).ToList();
        var fusion = stages.FirstOrDefault(s => s.Stage == AnalysisStages.Fusion && s.State == StageState.Succeeded)?.Result;
        return TypedResults.Ok(new AnalysisResponse(id, stages, fusion is null ? null : System.Text.Json.JsonSerializer.Deserialize<FusedDescription>(fusion, System.Text.Json.JsonSerializerOptions.Web)));
    }

    private static async Task<Results<Accepted<AnalysisResponse>, ProblemHttpResult, ValidationProblem>> RetryAsync(
        string id, string stage, HttpContext context, MediaAccess access, MediaStore media, AnalysisStore store, AnalysisService analysis, IAuditLog audit, CancellationToken cancellationToken)
    {
        if (!AnalysisStages.All.Contains(stage))
        {
            return Problems.Validation("stage", $"stage must be one of {string.Join(", ", AnalysisStages.All)}.");
        }
        var (asset, caller) = await FindAsync(id, context, access, media, cancellationToken);
        if (asset is null)
        {
            return Problems.NotFound("The asset");
        }
        if (!MediaAccess.CanWrite(caller, asset))
        {
            return Problems.Forbidden("Only the asset's owner or a media admin may run its analysis again.");
        }
        if (await store.StageAsync(id, stage, cancellationToken) is not { } row)
        {
            return Problems.Conflict("The asset has not been analysed yet: analysis starts when it becomes ready.");
        }
        if (!await analysis.RetryAsync(id, stage, cancellationToken))
        {
            return Problems.Conflict($"The {stage} stage is {row.State}; only an ended stage can run again.");
        }
        await audit.AppendAsync(new AuditEvent("analysis.retry", AuditOutcome.Success)
        {
            Target = $"media:{id}",
            Details = new Dictionary<string, string> { ["stage"] = stage, ["previousState"] = row.State },
        }.From(context), cancellationToken);
        var stages = (await store.StagesAsync(id, cancellationToken)).Select(s => s.ToResponse()).ToList();
        return TypedResults.Accepted($"/api/v1/media/{id}/analysis", new AnalysisResponse(id, stages, null));
    }

    private static async Task<Results<Ok<SearchResponse>, ValidationProblem>> SearchAsync(
        string? q, int? limit, HttpContext context, MediaAccess access, AnalysisStore store, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, null);
        if (string.IsNullOrWhiteSpace(q) || AnalysisStore.Terms(q).Count == 0)
        {
            errors.Add("q", "q must hold at least one word to search for.");
        }
        errors.MaxLength("q", q, 500);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var caller = await access.CallerAsync(context);
        var hits = await store.SearchAsync(q!, new Visibility(caller.Admin, caller.Actor, caller.Subject), size, cancellationToken);
        return TypedResults.Ok(new SearchResponse(hits));
    }

    private static async Task<Results<Ok<SimilarResponse>, ProblemHttpResult, ValidationProblem>> SimilarAsync(
        string id, int? limit, HttpContext context, MediaAccess access, MediaStore media, AnalysisStore store, AnalysisService analysis, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 100)
        {
            return Problems.Validation("limit", "limit must be between 1 and 100.");
        }
        var (asset, caller) = await FindAsync(id, context, access, media, cancellationToken);
        if (asset is null)
        {
            return Problems.NotFound("The asset");
        }
        if (await store.EmbeddingAsync(id, cancellationToken) is not { } embedding)
        {
            var stage = await store.StageAsync(id, AnalysisStages.Embedding, cancellationToken);
            return Problems.Conflict($"The asset has no embedding yet (embedding stage: {stage?.State ?? "not started"}{(stage?.Reason is { } r ? ", " + r : "")}).");
        }
        var nearDuplicate = analysis.Options.Embedding.NearDuplicate;
        var nearest = await store.NearestAsync(id, embedding.Model, embedding.Vector, new Visibility(caller.Admin, caller.Actor, caller.Subject), limit ?? 10, cancellationToken);
        return TypedResults.Ok(new SimilarResponse(id, embedding.Model,
            [.. nearest.Select(n => new SimilarAsset(n.AssetId, n.Filename, Math.Round(n.Score, 4), n.Score >= nearDuplicate))]));
    }
}
