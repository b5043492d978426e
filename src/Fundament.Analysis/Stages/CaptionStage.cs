using System.Text.Json.Nodes;
using Fundament.Media;
using Microsoft.Extensions.AI;

namespace Fundament.Analysis.Stages;

/// <summary>
/// Stage <c>caption</c>: a vision model (LLaVA behind vLLM, llama.cpp or Ollama) describes the picture
/// in one sentence and names tags. The picture goes as one <c>data:</c> URL in one message, resized
/// to <see cref="ModelEndpointOptions.MaxImageSide"/>. Skipped until an endpoint is configured.
/// </summary>
internal sealed class CaptionStage(AnalysisStore store, AnalysisService analysis, MediaStore media, AnalysisImages images, ModelClient models, ILogger<CaptionStage> logger)
    : StageJob(store, analysis, media, logger)
{
    internal const string Prompt = """
        Describe this picture for a photo library. Answer with one JSON object and nothing else:
        {"caption": "<one sentence, at most 300 characters>", "tags": ["<at most 15 single lowercase words or short phrases>"]}
        """;

    public override string Stage => AnalysisStages.Caption;

    protected override async Task<StageOutcome> RunAsync(AssetRow asset, CancellationToken cancellationToken)
    {
        var vision = Analysis.Options.Vision;
        if (!vision.Configured)
        {
            throw new StageSkippedException("skipped: no endpoint configured (Fundament:Analysis:Vision:Endpoint and Model)");
        }
        var picture = await images.LoadAsync(asset, vision.MaxImageSide, ".jpg", cancellationToken);
        var (answer, model) = await models.AskAsync(vision, "Vision", [new TextContent(Prompt), new DataContent(picture, "image/jpeg")],
            a => ModelClient.RequireString(a, "caption", 1000) ?? ModelClient.RequireStrings(a, "tags", 30), cancellationToken);
        return new StageOutcome(new JsonObject
        {
            ["caption"] = answer["caption"]!.GetValue<string>().Trim(),
            ["tags"] = new JsonArray([.. ModelClient.Strings(answer, "tags").Select(t => (JsonNode)t)]),
        }, model);
    }
}
