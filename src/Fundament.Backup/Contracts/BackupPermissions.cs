namespace Fundament.Backup;

public static class BackupPermissions
{
    public const string Read = "backup.read";
    public const string Write = "backup.write";
}
