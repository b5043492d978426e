using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Fundament.Jobs;

namespace Fundament.Analysis;

/// <summary>
/// Starts the stages of an asset that became ready, queues fusion once its inputs have ended, starts a
/// stage over on request, and keeps the searchable text in step with what the stages found.
/// Everything here is idempotent: a redelivered <c>media.ready</c> or a job run twice queues nothing twice.
/// </summary>
internal sealed partial class AnalysisService(AnalysisStore store, IJobQueue jobs, IDatabase database, IOptions<AnalysisOptions> options, ILogger<AnalysisService> logger)
{
    public AnalysisOptions Options => options.Value;

    /// <summary>Creates the asset's stage rows and queues every stage that can start (all but fusion).</summary>
    public async Task StartAsync(string assetId, CancellationToken cancellationToken)
    {
        if (!Options.Enabled || await store.AssetStateAsync(assetId, cancellationToken) is not (Fundament.Media.MediaState.Ready or Fundament.Media.MediaState.Archived))
        {
            // An asset already purged, or an event for one this database never had: nothing to analyse.
            return;
        }
        await store.CreateStagesAsync(assetId, AnalysisStages.All, cancellationToken);
        foreach (var stage in await store.StagesAsync(assetId, cancellationToken))
        {
            // Pending rows of an earlier delivery whose queueing did not happen (a crash in between) are queued now.
            if (stage.State == StageState.Pending && stage.Stage != AnalysisStages.Fusion)
            {
                await QueueAsync(assetId, stage.Stage, stage.Generation, cancellationToken);
            }
        }
        // A fusion whose inputs ended while its queueing was lost (a crash in between) is queued now.
        if (await store.StageAsync(assetId, AnalysisStages.Fusion, cancellationToken) is { State: StageState.Pending } fusion && await InputsEndedAsync(assetId, cancellationToken))
        {
            await QueueAsync(assetId, AnalysisStages.Fusion, fusion.Generation, cancellationToken);
        }
        LogStarted(logger, assetId);
    }

    /// <summary>
    /// Starts a stage over (a new generation): one that ended, or one left pending or running by a job
    /// that will not finish it (dead, cancelled, gone: a worker killed on the last attempt, a crash
    /// between steps). False when its job is still queued or running.
    /// </summary>
    public async Task<bool> RetryAsync(string assetId, string stage, CancellationToken cancellationToken)
    {
        var generation = await store.ResetAsync(assetId, stage, cancellationToken);
        if (generation is null && await store.StageAsync(assetId, stage, cancellationToken) is { State: StageState.Pending or StageState.Running } row
            && (row.JobId is null || await jobs.StateAsync(row.JobId, cancellationToken) is null or Fundament.Jobs.JobState.Dead or Fundament.Jobs.JobState.Cancelled or Fundament.Jobs.JobState.Succeeded)
            && !(stage == AnalysisStages.Fusion && row.State == StageState.Pending && row.JobId is null && !await InputsEndedAsync(assetId, cancellationToken)))
        {
            generation = await store.ResetAsync(assetId, stage, cancellationToken, [row.State]);
        }
        if (generation is null)
        {
            return false;
        }
        if (stage != AnalysisStages.Fusion || await InputsEndedAsync(assetId, cancellationToken))
        {
            await QueueAsync(assetId, stage, generation.Value, cancellationToken);
        }
        return true;
    }

    /// <summary>After a stage ended: the search text follows, and fusion starts (again) when its inputs have all ended.</summary>
    public async Task AfterStageAsync(string assetId, string stage, CancellationToken cancellationToken)
    {
        await RefreshDocumentAsync(assetId, cancellationToken);
        if (!AnalysisStages.FusionInputs.Contains(stage) || !await InputsEndedAsync(assetId, cancellationToken))
        {
            return;
        }
        var fusion = await store.StageAsync(assetId, AnalysisStages.Fusion, cancellationToken);
        if (fusion is null)
        {
            return;
        }
        if (fusion.State == StageState.Pending)
        {
            await QueueAsync(assetId, AnalysisStages.Fusion, fusion.Generation, cancellationToken);
        }
        else if (await store.ResetAsync(assetId, AnalysisStages.Fusion, cancellationToken,
            [StageState.Running, StageState.Succeeded, StageState.Failed, StageState.Skipped]) is { } generation)
        {
            // An input was run again (a retry): what fusion made, or is making, from the old one is out of
            // date. A fusion still running belongs to the old generation now, and its outcome is discarded.
            await QueueAsync(assetId, AnalysisStages.Fusion, generation, cancellationToken);
        }
    }

    /// <summary>Drops everything analysis holds about an asset that was purged.</summary>
    public async Task ForgetAsync(string assetId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        foreach (var table in new[] { "analysis_stages", "analysis_documents", "analysis_embeddings" })
        {
            await connection.ExecuteAsync(database.Command($"DELETE FROM {table} WHERE asset_id = @assetId", new { assetId }, cancellationToken: cancellationToken));
        }
    }

    private async Task<bool> InputsEndedAsync(string assetId, CancellationToken cancellationToken)
    {
        var stages = await store.StagesAsync(assetId, cancellationToken);
        return AnalysisStages.FusionInputs.All(input => stages.FirstOrDefault(s => s.Stage == input) is { } row && StageState.IsTerminal(row.State));
    }

    private async Task QueueAsync(string assetId, string stage, int generation, CancellationToken cancellationToken)
    {
        var type = AnalysisStages.JobType(stage);
        var id = await jobs.EnqueueAsync(JobRequest.Of(type, new StagePayload(assetId, generation), idempotencyKey: $"{type}:{assetId}:{generation}") with { MaxAttempts = Options.MaxAttempts }, cancellationToken);
        await store.SetJobAsync(assetId, stage, generation, id, cancellationToken);
    }

    /// <summary>The text search finds: fused title, description, tags, objects and text, the caption and its tags, and the OCR text.</summary>
    private async Task RefreshDocumentAsync(string assetId, CancellationToken cancellationToken)
    {
        // Two stages ending together each rebuild the text; whichever writes last must have seen both.
        // So the stages are read again after the write, and the text rebuilt until they did not change.
        var stages = await store.StagesAsync(assetId, cancellationToken);
        for (var round = 0; round < 5; round++)
        {
            await store.SaveDocumentAsync(assetId, Document(stages), cancellationToken);
            var after = await store.StagesAsync(assetId, cancellationToken);
            if (Fingerprint(after) == Fingerprint(stages))
            {
                return;
            }
            stages = after;
        }
    }

    private static string Fingerprint(IReadOnlyList<StageRow> stages) =>
        string.Join(';', stages.OrderBy(s => s.Stage, StringComparer.Ordinal).Select(s => $"{s.Stage}:{s.State}:{s.Generation}"));

    private static string Document(IReadOnlyList<StageRow> stages)
    {
        var body = new StringBuilder();
        foreach (var stage in stages)
        {
            if (stage.State != StageState.Succeeded || stage.Result is null || JsonNode.Parse(stage.Result) is not JsonObject result)
            {
                continue;
            }
            foreach (var field in new[] { "title", "description", "caption", "text", "tags", "objects" })
            {
                switch (result[field])
                {
                    case JsonValue value when value.TryGetValue<string>(out var text) && text.Length > 0:
                        body.Append(text).Append('\n');
                        break;
                    case JsonArray array:
                        body.AppendJoin(' ', array.Select(a => a?.ToString())).Append('\n');
                        break;
                }
            }
        }
        return body.Length > 100_000 ? body.ToString(0, 100_000) : body.ToString();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Analysis of asset {AssetId} queued")]
    private static partial void LogStarted(ILogger logger, string assetId);
}

internal sealed record StagePayload(string AssetId, int Generation);

/// <summary>
/// Starts the analysis when an asset becomes ready, and forgets it when the asset is purged. Runs as
/// the bus's consumer group <c>fundament.analysis</c>, so a node that is down when the event is
/// published catches up, and a failure is retried and finally dead-lettered where it can be replayed.
/// </summary>
internal sealed class AnalysisTrigger(IServiceProvider services) : IDomainEventHandler
{
    public string Name => "analysis";

    public IReadOnlySet<string>? Events { get; } = new HashSet<string>(StringComparer.Ordinal) { Fundament.Media.MediaEvents.Ready, Fundament.Media.MediaEvents.Purged };

    public async Task HandleAsync(DomainEvent domainEvent, CancellationToken cancellationToken)
    {
        if (domainEvent.Name is not (Fundament.Media.MediaEvents.Ready or Fundament.Media.MediaEvents.Purged)
            || !domainEvent.Data.TryGetProperty("id", out var id) || id.GetString() is not { Length: > 0 } assetId)
        {
            return;
        }
        var analysis = services.GetRequiredService<AnalysisService>();
        if (domainEvent.Name == Fundament.Media.MediaEvents.Purged)
        {
            await analysis.ForgetAsync(assetId, cancellationToken);
        }
        else
        {
            await analysis.StartAsync(assetId, cancellationToken);
        }
    }
}
