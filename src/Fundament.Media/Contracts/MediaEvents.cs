namespace Fundament.Media;

public static class MediaEvents
{
    public const string Ready = "media.ready";
    public const string Failed = "media.failed";
    public const string Trashed = "media.trashed";
    public const string Purged = "media.purged";
    public const string Archived = "media.archived";
    public const string Restored = "media.restored";
}
