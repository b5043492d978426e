using Fundament.Alerts;
using Fundament.Analysis;
using Fundament.Audit;
using Fundament.Backup;
using Fundament.Cluster;
using Fundament.Config;
using Fundament.Delivery;
using Fundament.Events;
using Fundament.Gateway;
using Fundament.Gpu;
using Fundament.Identity;
using Fundament.Jobs;
using Fundament.Media;
using Fundament.Messaging;
using Fundament.Registry;
using Fundament.Vault;

namespace Fundament.Server;

/// <summary>
/// The modules of the <c>fundament</c> binary, in the order they register. Each decides from the
/// node's roles what it runs (see docs/architecture.md, "How to add a module").
/// </summary>
internal static class PlatformModules
{
    public static IReadOnlyList<FundamentModule> All() =>
    [
        new IdentityModule(),
        new AuditModule(),
        new VaultModule(),
        new ConfigModule(),
        new RegistryModule(),
        new GatewayModule(),
        new DeliveryModule(),
        new AlertsModule(),
        new JobsModule(),
        new MediaModule(),
        new EventsModule(),
        new MessagingModule(),
        new ClusterModule(),
        new BackupModule(),
        new AnalysisModule(),
        new GpuModule(),
    ];
}
