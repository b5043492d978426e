using Fundament.Core.Quotas;

namespace Fundament.Jobs;

/// <summary>
/// Module <c>jobs</c>: the durable job queue. Every node can enqueue; the worker runs on every node
/// that registered handlers (<see cref="JobHandlers.AddJobHandler{T}"/>), unless
/// <c>Fundament:Jobs:WorkerEnabled</c> is false.
/// </summary>
public sealed class JobsModule : FundamentModule
{
    public override string Name => "jobs";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(JobPermissions.Manage, "See, retry and cancel jobs; pause and resume queues."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<JobsOptions, JobsOptionsValidator>(context.Configuration, JobsOptions.SectionName);
        services.TryAddSingleton<JobStore>();
        services.TryAddSingleton<IJobQueue>(sp => sp.GetRequiredService<JobStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IQuotaMeter, JobStore>(sp => sp.GetRequiredService<JobStore>()));
        services.TryAddSingleton<JobWorker>();
        if (context.Enabled(JobsOptions.SectionName, nameof(JobsOptions.WorkerEnabled)))
        {
            services.AddHostedService(sp => sp.GetRequiredService<JobWorker>());
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapJobsApi();
}
