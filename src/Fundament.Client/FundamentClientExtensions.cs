using System.Text.RegularExpressions;
using Fundament.Client;
using Microsoft.Extensions.ServiceDiscovery;

namespace Microsoft.Extensions.Hosting;

/// <summary>Connects a service to Fundament.</summary>
public static partial class FundamentClientExtensions
{
    /// <summary>
    /// Adds the Fundament client: registration on start (with heartbeats or an active health
    /// check) and deregistration on graceful shutdown; live configuration from Fundament;
    /// <see cref="ISecretStore"/>; and the <c>fundament</c> service discovery provider, which
    /// HttpClients opt into with <c>.AddServiceDiscovery()</c> to call <c>http://&lt;service&gt;/</c>.
    /// Settings come from <c>Fundament:Client</c>; <paramref name="configure"/> may adjust them.
    /// </summary>
    /// <exception cref="InvalidOperationException">A required setting (Url, ClientId, ClientSecret) is missing.</exception>
    public static IHostApplicationBuilder AddFundamentClient(this IHostApplicationBuilder builder, Action<FundamentClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new FundamentClientOptions();
        builder.Configuration.GetSection(FundamentClientOptions.SectionName).Bind(options);
        configure?.Invoke(options);
        options.Service ??= DefaultServiceName(builder.Environment.ApplicationName);
        var missing = new[] { options.Url is null ? "Url" : null, options.ClientId is null ? "ClientId" : null, options.ClientSecret is null ? "ClientSecret" : null }
            .Where(m => m is not null).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"Fundament client settings missing: {string.Join(", ", missing.Select(m => $"{FundamentClientOptions.SectionName}:{m}"))}.");
        }

        if (options.Configuration)
        {
            builder.Configuration.Add(new FundamentConfigurationSource(options));
        }
        var services = builder.Services;
        services.AddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new FundamentApi(options, sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<ISecretStore, SecretStore>();
        services.AddHealthChecks();
        services.AddServiceDiscoveryCore();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IServiceEndpointProviderFactory, FundamentServiceEndpointProviderFactory>());
        if (options.Register)
        {
            services.AddSingleton<RegistrationService>();
            services.AddHostedService(sp => sp.GetRequiredService<RegistrationService>());
        }
        return builder;
    }

    /// <summary>Maps the health endpoint Fundament checks (<see cref="FundamentClientOptions.HealthPath"/>).</summary>
    public static IEndpointConventionBuilder MapFundamentHealth(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = endpoints.ServiceProvider.GetRequiredService<FundamentClientOptions>();
        return endpoints.MapHealthChecks(options.HealthPath);
    }

    /// <summary>The service name used when none is set: the application name, lower-cased, other characters as '-'.</summary>
    internal static string DefaultServiceName(string applicationName) => NotAllowed().Replace(applicationName.ToLowerInvariant(), "-");

    [GeneratedRegex("[^a-z0-9._-]")]
    private static partial Regex NotAllowed();
}
