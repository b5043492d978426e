namespace Fundament.Jobs;

/// <summary>How another module tells the job worker of this node what it can run.</summary>
public static class JobHandlers
{
    /// <summary>Registers a handler this node runs jobs with.</summary>
    public static IServiceCollection AddJobHandler<T>(this IServiceCollection services)
        where T : class, IJobHandler
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IJobHandler, T>());
        return services;
    }
}
