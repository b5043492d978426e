using Fundament.Core.Backup;

namespace Fundament.Audit;

/// <summary>For <c>fundament backup verify</c>: the restored audit chain verifies end to end.</summary>
internal sealed class AuditBackupCheck(AuditLog audit) : IBackupCheck
{
    public string Name => "audit chain";

    public async Task<BackupCheckResult> RunAsync(CancellationToken cancellationToken)
    {
        var result = await audit.VerifyAsync(cancellationToken);
        return result.Valid
            ? new BackupCheckResult(true, $"{result.Entries} entries verify")
            : new BackupCheckResult(false, $"invalid at entry {result.FirstInvalidSeq}: {result.Reason}");
    }
}
