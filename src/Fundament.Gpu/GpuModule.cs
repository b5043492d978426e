namespace Fundament.Gpu;

/// <summary>
/// Module <c>gpu</c>: offers from the configured GPU clouds (Vast.ai, Lambda Cloud, RunPod), pools
/// with constraints and budgets, placement with failover and a decision log. Control nodes serve it.
/// Not yet: the reconciler that scales pools with the queue by itself, run-time metering, and the
/// other providers (ADR 0021).
/// </summary>
public sealed class GpuModule : FundamentModule
{
    public override string Name => "gpu";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(GpuPermissions.Read, "See GPU offers, pools, costs and the placement decision log."),
        new(GpuPermissions.Write, "Create and delete GPU pools and launch workers on them: this spends money, within each pool's budget."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<GpuOptions, GpuOptionsValidator>(context.Configuration, GpuOptions.SectionName);
        services.AddHttpClient(GpuProviders.HttpClientName, client => client.Timeout = TimeSpan.FromSeconds(30));
        services.TryAddSingleton<GpuProviders>();
        services.TryAddSingleton<GpuStore>();
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapGpuApi();
}
