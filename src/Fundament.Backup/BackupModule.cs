using Fundament.Jobs;

namespace Fundament.Backup;

/// <summary>
/// Module <c>backup</c>: <c>fundament backup</c>, <c>restore</c> and <c>backup verify</c> (run by
/// the server binary against the same settings), and backups the platform takes itself: on a
/// schedule (<c>Fundament:Backup:Schedule</c>) or on request (<c>POST /api/v1/backups</c>), through
/// the durable job queue on control nodes, one at a time, each verified, then pruned to the retention.
/// </summary>
public sealed class BackupModule : FundamentModule
{
    public override string Name => "backup";

    public override IReadOnlyList<string> Requires => ["jobs"];

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(BackupPermissions.Read, "See the backup schedule and the backups the platform took (where, when, outcome)."),
        new(BackupPermissions.Write, "Ask for a backup now (to the configured destination)."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<BackupOptions, BackupOptionsValidator>(context.Configuration, BackupOptions.SectionName);
        services.TryAddSingleton<BackupService>();
        services.TryAddSingleton<BackupRuns>();
        services.TryAddSingleton<BackupMetrics>();
        services.TryAddSingleton<BackupScheduler>();
        if (context.Runs(FundamentRoles.Control))
        {
            services.AddJobHandler<BackupJob>();
            if (context.Enabled(BackupOptions.SectionName, nameof(BackupOptions.SchedulerEnabled)))
            {
                services.AddHostedService(sp => sp.GetRequiredService<BackupScheduler>());
            }
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapBackupApi();
}
