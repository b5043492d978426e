using Cronos;

namespace Fundament.Backup;

/// <summary><c>Fundament:Backup:Schedule</c>: a five-field cron expression, evaluated in UTC (Cronos).</summary>
internal sealed class BackupSchedule(CronExpression expression)
{
    public static bool TryParse(string? text, out BackupSchedule? schedule)
    {
        schedule = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        if (!CronExpression.TryParse(text.Trim(), CronFormat.Standard, out var expression))
        {
            return false;
        }
        schedule = new BackupSchedule(expression);
        return true;
    }

    /// <summary>The first occurrence strictly after <paramref name="after"/>, or null if there is none.</summary>
    public DateTimeOffset? Next(DateTimeOffset after) => expression.GetNextOccurrence(after, TimeZoneInfo.Utc);
}
