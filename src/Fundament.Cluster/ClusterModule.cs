namespace Fundament.Cluster;

/// <summary>
/// Module <c>cluster</c>: every node, whatever its roles, records itself (id, host, roles, version,
/// start) and heartbeats into the shared store; control nodes list the membership with each
/// node's leases (<c>GET /api/v1/cluster/nodes</c>) and alert when a role has no live node.
/// </summary>
public sealed class ClusterModule : FundamentModule
{
    public override string Name => "cluster";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(ClusterPermissions.Read, "See the cluster's nodes, their roles, versions, status and leases."),
        new(ClusterPermissions.Write, "Forget a node that has stopped or stopped answering."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<ClusterOptions, ClusterOptionsValidator>(context.Configuration, ClusterOptions.SectionName);
        services.TryAddSingleton<NodeStore>();
        services.TryAddSingleton<NodeHeartbeat>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAlertConditionSource, ClusterAlertConditions>());
        // Off for `fundament admin recover` (not a node) and in tests that beat by hand.
        if (context.Enabled(ClusterOptions.SectionName, nameof(ClusterOptions.HeartbeatEnabled)))
        {
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, NodeHeartbeat>(sp => sp.GetRequiredService<NodeHeartbeat>()));
            services.AddHostedService(sp => sp.GetRequiredService<NodeHeartbeat>());
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapClusterApi();
}
