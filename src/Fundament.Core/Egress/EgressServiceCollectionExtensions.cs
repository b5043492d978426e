namespace Fundament.Core.Egress;

public static class EgressServiceCollectionExtensions
{
    /// <summary>The egress policy (<c>Fundament:Egress</c>), its guard and the guarded connector.</summary>
    public static IServiceCollection AddFundamentEgress(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSettings<EgressOptions, EgressOptionsValidator>(configuration, EgressOptions.SectionName);
        services.TryAddSingleton<OwnEndpoints>();
        services.TryAddSingleton(sp => new EgressGuard(
            sp.GetRequiredService<IOptions<EgressOptions>>(), sp.GetRequiredService<OwnEndpoints>(),
            sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<EgressGuard>>()));
        services.TryAddSingleton<IEgressResolver, DnsEgressResolver>();
        services.TryAddSingleton<EgressConnector>();
        return services;
    }

    /// <summary>The guard's own rule parser names each bad entry with its full key.</summary>
    private sealed class EgressOptionsValidator : SettingsValidator<EgressOptions>
    {
        protected override string Section => EgressOptions.SectionName;

        protected override void Check(EgressOptions options, SettingsProblems problems)
        {
            foreach (var problem in EgressGuard.Problems(options))
            {
                problems.AddSentence(problem);
            }
        }
    }
}
