using System.Text.Json.Nodes;
using Fundament.Jobs;
using Fundament.Media;

namespace Fundament.Analysis.Stages;

/// <summary>What a stage produced: its result document and the model that made it.</summary>
internal sealed record StageOutcome(JsonNode Result, string? Model = null);

/// <summary>The stage cannot apply (no endpoint configured, no picture, a tool not installed): <c>skipped</c> with the reason. Nothing failed.</summary>
internal sealed class StageSkippedException(string reason) : Exception(reason);

/// <summary>A failure another attempt will not fix (the model does not take images, its answers stay invalid): <c>failed</c> at once.</summary>
internal sealed class StageFailedException(string reason, Exception? inner = null) : Exception(reason, inner);

/// <summary>
/// One stage as a job on the durable queue (<c>analysis.&lt;stage&gt;</c>). The stage row follows the job:
/// <c>running</c> with its attempt counted, then <c>succeeded</c>, <c>skipped</c> or <c>failed</c> with the
/// reason. Errors another attempt may cure (an endpoint down, a timeout) are noted on the row and
/// retried with the queue's back-off; the stage fails when the attempts run out. A job of an earlier
/// generation (the stage was retried meanwhile) changes nothing.
/// </summary>
internal abstract partial class StageJob(AnalysisStore store, AnalysisService analysis, MediaStore media, ILogger logger) : IJobHandler
{
    public abstract string Stage { get; }

    protected AnalysisService Analysis => analysis;

    protected AnalysisStore Store => store;

    public string Type => AnalysisStages.JobType(Stage);

    protected abstract Task<StageOutcome> RunAsync(AssetRow asset, CancellationToken cancellationToken);

    public async Task HandleAsync(JobContext job, CancellationToken cancellationToken)
    {
        var payload = job.Read<StagePayload>();
        if (!await store.StartAsync(payload.AssetId, Stage, payload.Generation, job.Id, cancellationToken))
        {
            // Ended already. When this job ended it and then failed before the steps after it (the search
            // text, queueing fusion), it is run again: those steps are idempotent.
            if (await store.StageAsync(payload.AssetId, Stage, cancellationToken) is { } row && row.Generation == payload.Generation && row.JobId == job.Id
                && StageState.IsTerminal(row.State))
            {
                await analysis.AfterStageAsync(payload.AssetId, Stage, cancellationToken);
            }
            return;
        }
        string state;
        string? reason = null;
        StageOutcome? outcome = null;
        try
        {
            var asset = await media.GetAsync(payload.AssetId, cancellationToken);
            if (asset is null || asset.State == MediaState.Trashed)
            {
                throw new StageSkippedException("the asset is gone or in the trash");
            }
            outcome = await RunAsync(asset, cancellationToken);
            state = StageState.Succeeded;
        }
        catch (StageSkippedException ex)
        {
            (state, reason) = (StageState.Skipped, ex.Message);
        }
        catch (StageFailedException ex)
        {
            (state, reason) = (StageState.Failed, ex.Message);
            LogFailed(logger, Stage, payload.AssetId, ex.Message);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var message = Describe(ex);
            if (job.Attempt < job.MaxAttempts)
            {
                await store.NoteAsync(payload.AssetId, Stage, payload.Generation, job.Id, $"attempt {job.Attempt} of {job.MaxAttempts}: {message}", cancellationToken);
                throw;
            }
            (state, reason) = (StageState.Failed, $"failed after {job.Attempt} attempts: {message}");
            LogFailed(logger, Stage, payload.AssetId, reason);
        }
        if (await store.FinishAsync(payload.AssetId, Stage, payload.Generation, state, reason, outcome?.Result, outcome?.Model, cancellationToken))
        {
            await analysis.AfterStageAsync(payload.AssetId, Stage, cancellationToken);
        }
    }

    private static string Describe(Exception ex) => ex switch
    {
        TaskCanceledException or OperationCanceledException => "timed out",
        _ => ex.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? ex.GetType().Name,
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Analysis stage {Stage} of asset {AssetId} failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string stage, string assetId, string reason);
}
