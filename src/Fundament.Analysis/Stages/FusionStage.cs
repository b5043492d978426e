using System.Text.Json;
using System.Text.Json.Nodes;
using Fundament.Media;
using Microsoft.Extensions.AI;

namespace Fundament.Analysis.Stages;

/// <summary>
/// Stage <c>fusion</c>: a language model (Llama 3.1 and the like) merges the caption and tags, the OCR
/// text and the asset's metadata into one description, <see cref="FusedDescription"/>. The answer is
/// checked against that shape (every field, its type and size) and asked again when it does not fit.
/// Runs once OCR and caption have both ended; skipped until an endpoint is configured, or when
/// neither found anything.
/// </summary>
internal sealed class FusionStage(AnalysisStore store, AnalysisService analysis, MediaStore media, ModelClient models, ILogger<FusionStage> logger)
    : StageJob(store, analysis, media, logger)
{
    internal const string Instructions = """
        You catalogue a photo library. From what the tools below found about one file, write its catalogue entry.
        Answer with one JSON object and nothing else, with exactly these fields:
        {"title": "<at most 80 characters>", "description": "<two or three sentences>", "tags": ["<at most 20 lowercase keywords>"],
         "objects": ["<things visible in it, at most 20>"], "text": "<the legible text in it, corrected, or empty>", "language": "<ISO 639-1 code of that text, or und>"}
        Use only what the tools found; do not invent places, names or dates.
        """;

    public override string Stage => AnalysisStages.Fusion;

    protected override async Task<StageOutcome> RunAsync(AssetRow asset, CancellationToken cancellationToken)
    {
        var fusion = Analysis.Options.Fusion;
        if (!fusion.Configured)
        {
            throw new StageSkippedException("skipped: no endpoint configured (Fundament:Analysis:Fusion:Endpoint and Model)");
        }
        var stages = await Store.StagesAsync(asset.Id, cancellationToken);
        JsonObject? Result(string stage) => stages.FirstOrDefault(s => s.Stage == stage && s.State == StageState.Succeeded)?.Result is { } r ? JsonNode.Parse(r) as JsonObject : null;
        var caption = Result(AnalysisStages.Caption);
        var ocr = Result(AnalysisStages.Ocr);
        var ocrText = ocr?["text"]?.GetValue<string>() ?? "";
        if (caption is null && ocrText.Length == 0)
        {
            throw new StageSkippedException("nothing to fuse: no caption and no text were found");
        }
        var metadata = asset.Metadata is { } m ? JsonNode.Parse(m) as JsonObject : null;
        var facts = new JsonObject
        {
            ["filename"] = asset.Filename,
            ["type"] = asset.Kind,
            ["caption"] = caption?["caption"]?.DeepClone(),
            ["captionTags"] = caption?["tags"]?.DeepClone(),
            ["ocrText"] = ocrText.Length > 4000 ? ocrText[..4000] : ocrText,
            ["ocrConfidence"] = ocr?["confidence"]?.DeepClone(),
            ["takenAt"] = metadata?["takenAt"]?.DeepClone(),
            ["camera"] = string.Join(' ', new[] { metadata?["cameraMake"]?.ToString(), metadata?["cameraModel"]?.ToString() }.Where(s => !string.IsNullOrEmpty(s))),
            ["gps"] = metadata?["gps"]?.DeepClone(),
        };
        var (answer, model) = await models.AskAsync(fusion, "Fusion",
            [new TextContent(Instructions + "\nWhat the tools found:\n" + facts.ToJsonString(new JsonSerializerOptions { WriteIndented = true }))], Validate, cancellationToken);
        var fused = new FusedDescription(
            answer["title"]!.GetValue<string>().Trim(), answer["description"]!.GetValue<string>().Trim(), ModelClient.Strings(answer, "tags"),
            ModelClient.Strings(answer, "objects"), answer["text"]!.GetValue<string>().Trim(), answer["language"]!.GetValue<string>().Trim().ToLowerInvariant());
        return new StageOutcome(JsonSerializer.SerializeToNode(fused, JsonSerializerOptions.Web)!, model);
    }

    /// <summary>The shape of <see cref="FusedDescription"/>; the first thing wrong, or null.</summary>
    internal static string? Validate(JsonObject answer)
    {
        var unknown = answer.Select(p => p.Key).Except(["title", "description", "tags", "objects", "text", "language"]).FirstOrDefault();
        return ModelClient.RequireString(answer, "title", 200)
            ?? ModelClient.RequireString(answer, "description", 2000)
            ?? ModelClient.RequireStrings(answer, "tags", 30)
            ?? ModelClient.RequireStrings(answer, "objects", 50)
            ?? ModelClient.RequireString(answer, "text", 20_000, allowEmpty: true)
            ?? (answer["language"] is JsonValue v && v.TryGetValue<string>(out var language) && language.Trim() is { Length: 2 or 3 } code && code.All(char.IsAsciiLetter)
                ? null : "\"language\" must be an ISO 639-1 code such as \"en\" or \"de\", or \"und\"")
            ?? (unknown is null ? null : $"unexpected field \"{unknown}\"");
    }
}
