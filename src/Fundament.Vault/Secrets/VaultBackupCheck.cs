using Fundament.Core.Backup;

namespace Fundament.Vault.Secrets;

/// <summary>For <c>fundament backup verify</c>: a sample of the restored secrets decrypts with the master key given.</summary>
internal sealed class VaultBackupCheck(SecretStore store) : IBackupCheck
{
    private const int Sample = 50;

    public string Name => "vault secrets";

    public async Task<BackupCheckResult> RunAsync(CancellationToken cancellationToken)
    {
        var (decrypted, failed, total) = await store.DecryptSampleAsync(Sample, cancellationToken);
        return failed.Count == 0
            ? new BackupCheckResult(true, $"{decrypted} of {total} secret versions sampled, all decrypt")
            : new BackupCheckResult(false, $"{failed.Count} of {decrypted + failed.Count} sampled secret versions do not decrypt (wrong master key?): {string.Join(", ", failed.Take(5))}");
    }
}
