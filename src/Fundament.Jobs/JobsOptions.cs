namespace Fundament.Jobs;

/// <summary>Section <c>Fundament:Jobs</c>.</summary>
public sealed class JobsOptions
{
    public const string SectionName = "Fundament:Jobs";

    /// <summary>Whether this process runs the handlers it has (its roles decide which). Default true.</summary>
    public bool WorkerEnabled { get; set; } = true;

    /// <summary>How often an idle worker looks for due jobs. Jobs enqueued in the same process wake it at once. Default 1s.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a claimed job stays leased without a heartbeat; the worker renews it every third of this. Default 30s.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Attempts before a job is dead-lettered, unless the job says otherwise. Default 5.</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Back-off after the first failed attempt; doubles each attempt, with jitter. Default 5s.</summary>
    public TimeSpan RetryBase { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Back-off ceiling. Default 1h.</summary>
    public TimeSpan RetryMax { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Jobs of one type one process runs at once, unless <see cref="Queues"/> says otherwise. Default: the processor count.</summary>
    public int DefaultConcurrency { get; set; } = Environment.ProcessorCount;

    /// <summary>Per job type settings, e.g. <c>Fundament:Jobs:Queues:media.process:Concurrency</c>.</summary>
    public Dictionary<string, JobQueueOptions> Queues { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Finished (succeeded or cancelled) jobs are deleted after this. Dead jobs are kept. Default 7 days.</summary>
    public TimeSpan RetainFinished { get; set; } = TimeSpan.FromDays(7);

    public int ConcurrencyOf(string type) =>
        Queues.TryGetValue(type, out var queue) && queue.Concurrency is { } c ? c : DefaultConcurrency;
}

public sealed class JobQueueOptions
{
    /// <summary>Jobs of this type one process runs at once.</summary>
    public int? Concurrency { get; set; }
}

internal sealed class JobsOptionsValidator : SettingsValidator<JobsOptions>
{
    protected override string Section => JobsOptions.SectionName;

    protected override void Check(JobsOptions o, SettingsProblems problems)
    {
        problems.Between(o.PollInterval, TimeSpan.FromMilliseconds(50), TimeSpan.FromMinutes(1));
        problems.Between(o.LeaseDuration, TimeSpan.FromSeconds(3), TimeSpan.FromHours(1));
        problems.Between(o.MaxAttempts, 1, 100);
        problems.Positive(o.RetryBase);
        problems.Require(o.RetryMax >= o.RetryBase, o.RetryMax, "must not be below RetryBase.");
        problems.Between(o.DefaultConcurrency, 1, 256);
        foreach (var (queue, options) in o.Queues)
        {
            if (options.Concurrency is < 1 or > 256)
            {
                problems.AddSentence($"{JobsOptions.SectionName}:{nameof(o.Queues)}:{queue}:{nameof(options.Concurrency)} must be between 1 and 256.");
            }
        }
        problems.AtLeast(o.RetainFinished, TimeSpan.FromMinutes(1));
    }
}
