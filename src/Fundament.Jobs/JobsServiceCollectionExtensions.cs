using Fundament.Security;
using Fundament.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Jobs;

public static class JobsServiceCollectionExtensions
{
    /// <summary>
    /// The durable job queue. Every process can enqueue; the worker runs in every process that
    /// registered handlers (with <see cref="AddJobHandler{T}"/>), unless <c>Fundament:Jobs:WorkerEnabled</c> is false.
    /// </summary>
    public static IServiceCollection AddJobs(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<JobsOptions>()
            .Bind(configuration.GetSection(JobsOptions.SectionName))
            .Validate(o => o.PollInterval >= TimeSpan.FromMilliseconds(50) && o.PollInterval <= TimeSpan.FromMinutes(1), "Fundament:Jobs:PollInterval must be between 00:00:00.05 and 00:01:00.")
            .Validate(o => o.LeaseDuration >= TimeSpan.FromSeconds(3) && o.LeaseDuration <= TimeSpan.FromHours(1), "Fundament:Jobs:LeaseDuration must be between 00:00:03 and 01:00:00.")
            .Validate(o => o.MaxAttempts is >= 1 and <= 100, "Fundament:Jobs:MaxAttempts must be between 1 and 100.")
            .Validate(o => o.RetryBase > TimeSpan.Zero && o.RetryMax >= o.RetryBase, "Fundament:Jobs:RetryBase must be positive and not above RetryMax.")
            .Validate(o => o.DefaultConcurrency is >= 1 and <= 256 && o.Queues.Values.All(q => q.Concurrency is null or (>= 1 and <= 256)), "Fundament:Jobs concurrency values must be between 1 and 256.")
            .Validate(o => o.RetainFinished >= TimeSpan.FromMinutes(1), "Fundament:Jobs:RetainFinished must be at least 00:01:00.")
            .ValidateOnStart();
        services.AddMigrations(new JobsMigrations());
        services.TryAddSingleton<JobStore>();
        services.TryAddSingleton<IJobQueue>(sp => sp.GetRequiredService<JobStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Fundament.Quotas.IQuotaMeter, JobStore>(sp => sp.GetRequiredService<JobStore>()));
        services.TryAddSingleton<JobWorker>();
        if (configuration.GetValue(JobsOptions.SectionName + ":" + nameof(JobsOptions.WorkerEnabled), true))
        {
            services.AddHostedService(sp => sp.GetRequiredService<JobWorker>());
        }
        services.AddPermissions(JobPermissions.Manage);
        return services;
    }

    /// <summary>Registers a handler this process runs jobs with.</summary>
    public static IServiceCollection AddJobHandler<T>(this IServiceCollection services)
        where T : class, IJobHandler
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IJobHandler, T>());
        return services;
    }

    public static IEndpointRouteBuilder MapJobs(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapJobsApi();
        return endpoints;
    }
}
