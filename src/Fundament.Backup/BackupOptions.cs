using Fundament.Media.Storage;

namespace Fundament.Backup;

/// <summary>Settings for backups, section <c>Fundament:Backup</c>. The commands take their destination on the command line; the schedule uses <see cref="To"/>.</summary>
public sealed class BackupOptions
{
    public const string SectionName = "Fundament:Backup";

    /// <summary>Where scheduled backups go: a folder, or <c>s3://bucket/prefix</c> (credentials in <see cref="S3"/>). Required with <see cref="Schedule"/>.</summary>
    public string? To { get; set; }

    /// <summary>Cron expression (five fields, UTC) for scheduled backups, e.g. <c>0 3 * * *</c>. Empty: no scheduled backups.</summary>
    public string? Schedule { get; set; }

    /// <summary>How many complete backups to keep at <see cref="To"/>; older ones are deleted after a new one is verified. Default 7.</summary>
    public int Retention { get; set; } = 7;

    /// <summary>Verify each scheduled backup after taking it (<c>fundament backup verify</c>). Default true.</summary>
    public bool Verify { get; set; } = true;

    /// <summary>A scheduled backup older than this turns the backup alert on (and <c>FundamentBackupStale</c> fires). Default 26 h.</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromHours(26);

    /// <summary>The <c>pg_dump</c> executable for PostgreSQL backups. Default <c>pg_dump</c> on the PATH.</summary>
    public string PgDump { get; set; } = "pg_dump";

    /// <summary>The <c>pg_restore</c> executable. Default <c>pg_restore</c> on the PATH.</summary>
    public string PgRestore { get; set; } = "pg_restore";

    /// <summary>Whether control nodes run the scheduler (and refresh the backup metrics). Default true; tests turn it off.</summary>
    public bool SchedulerEnabled { get; set; } = true;

    /// <summary>Objects copied at once. Default 4.</summary>
    public int Parallelism { get; set; } = 4;

    /// <summary>The S3 endpoint and credentials for <c>s3://</c> destinations (bucket and prefix come from the address).</summary>
    public S3StoreOptions S3 { get; set; } = new();
}

internal sealed class BackupOptionsValidator : SettingsValidator<BackupOptions>
{
    protected override string Section => BackupOptions.SectionName;

    protected override void Check(BackupOptions o, SettingsProblems problems)
    {
        problems.Between(o.Retention, 1, 10_000);
        problems.Between(o.Parallelism, 1, 64);
        if (!string.IsNullOrWhiteSpace(o.Schedule))
        {
            problems.Require(BackupSchedule.TryParse(o.Schedule, out _), o.Schedule, "is not a cron expression (five fields, e.g. '0 3 * * *').");
            if (string.IsNullOrWhiteSpace(o.To))
            {
                problems.AddSentence($"{problems.Key(nameof(o) + "." + nameof(o.To))} is required when {problems.Key(nameof(o) + "." + nameof(o.Schedule))} is set.");
            }
        }
        if (!string.IsNullOrWhiteSpace(o.To))
        {
            problems.Require(BackupLocation.TryParse(o.To, out _, out _), o.To, "must be a folder or s3://bucket/prefix.");
        }
        problems.Positive(o.StaleAfter);
    }
}
