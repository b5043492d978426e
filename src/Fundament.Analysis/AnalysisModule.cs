using Fundament.Analysis.Stages;
using Fundament.Jobs;

namespace Fundament.Analysis;

/// <summary>
/// Module <c>analysis</c>: when an asset becomes ready (<c>media.ready</c>, consumed from the bus), its
/// stages run as jobs on the durable queue: <c>analysis.ocr</c> (tesseract), <c>analysis.caption</c>
/// (an OpenAI-compatible vision model), <c>analysis.embedding</c> (ResNet18 on the CPU) and, once OCR
/// and caption have ended, <c>analysis.fusion</c> (an OpenAI-compatible language model). Each stage's
/// state, attempts and reason are readable and it can be run again. Media workers run the stages;
/// nodes with the media API serve the results, search and similar images.
/// </summary>
public sealed class AnalysisModule : FundamentModule
{
    public override string Name => "analysis";

    public override IReadOnlyList<string> Requires { get; } = ["jobs", "media"];

    public override string ApiRole => FundamentRoles.Media;

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<AnalysisOptions, AnalysisOptionsValidator>(context.Configuration, AnalysisOptions.SectionName);
        services.TryAddSingleton<AnalysisStore>();
        services.TryAddSingleton<AnalysisService>();
        // Every node that runs the bus's handlers reacts to media.ready; the trigger needs only the queue and the module's tables.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IDomainEventHandler, AnalysisTrigger>());
        if (context.Runs(FundamentRoles.MediaWorker))
        {
            services.TryAddSingleton<AnalysisImages>();
            services.TryAddSingleton<ModelClient>();
            services.TryAddSingleton<ImageEmbedder>();
            services.AddJobHandler<OcrStage>();
            services.AddJobHandler<CaptionStage>();
            services.AddJobHandler<EmbeddingStage>();
            services.AddJobHandler<FusionStage>();
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapAnalysisApi();
}
