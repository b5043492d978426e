using Fundament.Jobs;

namespace Fundament.Backup;

/// <summary>
/// Module <c>backup</c>: <c>fundament backup</c>, <c>restore</c> and <c>backup verify</c> (run by
/// the server binary), and scheduled backups on the durable job queue.
/// </summary>
public sealed class BackupModule : FundamentModule
{
    public override string Name => "backup";

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<BackupOptions, BackupOptionsValidator>(context.Configuration, BackupOptions.SectionName);
        services.TryAddSingleton<BackupService>();
    }
}
