using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Fundament.Analysis;

/// <summary>The stages, each a job type <c>analysis.&lt;stage&gt;</c> on the durable queue (so a GPU pool can take only its own).</summary>
public static class AnalysisStages
{
    public const string Ocr = "ocr";
    public const string Caption = "caption";
    public const string Embedding = "embedding";
    public const string Fusion = "fusion";

    public static readonly IReadOnlyList<string> All = [Ocr, Caption, Embedding, Fusion];

    /// <summary>What fusion waits for.</summary>
    public static readonly IReadOnlyList<string> FusionInputs = [Ocr, Caption];

    public static string JobType(string stage) => "analysis." + stage;
}

/// <summary>A stage's state, lower-case on the wire.</summary>
public static class StageState
{
    public const string Pending = "pending";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Skipped = "skipped";

    public static bool IsTerminal(string state) => state is Succeeded or Failed or Skipped;
}

/// <param name="Stage">ocr, caption, embedding or fusion.</param>
/// <param name="State">pending, running, succeeded, failed or skipped.</param>
/// <param name="Attempts">Runs of this stage so far (a retry through the API starts again at 0).</param>
/// <param name="Reason">Why it failed or was skipped, or what the last attempt ran into.</param>
/// <param name="Result">The stage's output: OCR text and confidence, caption and tags, the fused description, the embedding's model and size.</param>
public sealed record StageResponse(
    string Stage, string State, int Attempts,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Reason,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Model,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? JobId,
    DateTimeOffset CreatedAt, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonNode? Result);

/// <param name="Summary">The fused description when fusion succeeded.</param>
public sealed record AnalysisResponse(string AssetId, IReadOnlyList<StageResponse> Stages, FusedDescription? Summary);

/// <summary>What fusion produces, validated against this shape before it is stored.</summary>
public sealed record FusedDescription(string Title, string Description, IReadOnlyList<string> Tags, IReadOnlyList<string> Objects, string Text, string Language);

public sealed record SearchHit(string AssetId, string? Filename, string State, string Snippet, double Rank);

public sealed record SearchResponse(IReadOnlyList<SearchHit> Items);

/// <param name="NearDuplicate">Whether the score reaches Fundament:Analysis:Embedding:NearDuplicate.</param>
public sealed record SimilarAsset(string AssetId, string? Filename, double Score, bool NearDuplicate);

public sealed record SimilarResponse(string AssetId, string Model, IReadOnlyList<SimilarAsset> Items);
