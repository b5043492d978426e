using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Fundament.Egress;

public static class EgressServiceCollectionExtensions
{
    /// <summary>The egress policy (<c>Fundament:Egress</c>), its guard and the guarded connector.</summary>
    public static IServiceCollection AddFundamentEgress(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<EgressOptions>()
            .Bind(configuration.GetSection(EgressOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EgressOptions>, EgressOptionsValidator>());
        services.TryAddSingleton<OwnEndpoints>();
        services.TryAddSingleton(sp => new EgressGuard(
            sp.GetRequiredService<IOptions<EgressOptions>>(), sp.GetRequiredService<OwnEndpoints>(),
            sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<EgressGuard>>()));
        services.TryAddSingleton<IEgressResolver, DnsEgressResolver>();
        services.TryAddSingleton<EgressConnector>();
        return services;
    }

    private sealed class EgressOptionsValidator : IValidateOptions<EgressOptions>
    {
        public ValidateOptionsResult Validate(string? name, EgressOptions options) =>
            EgressGuard.Problems(options) is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
    }
}
