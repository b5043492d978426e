using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Hosting;

namespace Fundament.Core.Modules;

/// <summary>Wires a host's modules: declarations, dependency checks, services, middleware, endpoints.</summary>
public static partial class ModuleHost
{
    /// <summary>
    /// Checks the modules' dependencies, registers every declaration (permissions, event types),
    /// then lets each module add its services for <paramref name="roles"/>, in the order given.
    /// </summary>
    /// <exception cref="StartupException">A module is listed twice or needs one that is absent.</exception>
    public static IServiceCollection AddFundamentModules(this IServiceCollection services, IConfiguration configuration, RoleSet roles,
        IReadOnlyList<FundamentModule> modules)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var module in modules)
        {
            if (!names.Add(module.Name))
            {
                throw new StartupException($"module '{module.Name}' is listed twice.");
            }
        }
        foreach (var module in modules)
        {
            if (module.Requires.FirstOrDefault(r => !names.Contains(r)) is { } missing)
            {
                throw new StartupException($"module '{module.Name}' needs module '{missing}', which this host does not include.");
            }
        }

        services.AddSingleton(new ModuleList(modules));
        services.TryAddSingleton<PermissionCatalog>();
        services.TryAddSingleton<EventTypeCatalog>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<AuthorizationOptions>, PermissionPolicies>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAuthorizationHandler, PermissionAuthorizationHandler>());
        services.AddHostedService<AbsentModuleReport>();
        var context = new ModuleContext(services, configuration, roles, names);
        foreach (var module in modules)
        {
            services.AddSingleton<IPermissionSource>(module);
            services.AddSingleton<IEventTypeSource>(module);
            if (EmbeddedMigrations.In(module.GetType().Assembly))
            {
                services.AddMigrations(new EmbeddedMigrations(module.Name, module.GetType().Assembly));
            }
            module.AddServices(context);
        }
        return services;
    }

    /// <summary>Each module's middleware ahead of routing, in module order.</summary>
    public static IApplicationBuilder UseFundamentModules(this IApplicationBuilder app)
    {
        var modules = app.ApplicationServices.GetRequiredService<ModuleList>();
        var roles = app.ApplicationServices.GetRequiredService<RoleSet>();
        var configuration = app.ApplicationServices.GetRequiredService<IConfiguration>();
        var context = new ModuleContext(new ServiceCollection(), configuration, roles, modules.Names);
        foreach (var module in modules.Modules)
        {
            module.UseMiddleware(app, context);
        }
        return app;
    }

    /// <summary>The API of every module whose <see cref="FundamentModule.ApiRole"/> this node runs.</summary>
    public static IEndpointRouteBuilder MapFundamentModules(this IEndpointRouteBuilder endpoints)
    {
        var modules = endpoints.ServiceProvider.GetRequiredService<ModuleList>();
        var roles = endpoints.ServiceProvider.GetRequiredService<RoleSet>();
        foreach (var module in modules.Modules.Where(m => roles.Runs(m.ApiRole)))
        {
            module.MapEndpoints(endpoints);
        }
        return endpoints;
    }

    /// <summary>The modules of this host, in the order <c>Program.cs</c> lists them.</summary>
    public sealed class ModuleList(IReadOnlyList<FundamentModule> modules)
    {
        public IReadOnlyList<FundamentModule> Modules { get; } = modules;

        public IReadOnlySet<string> Names { get; } = modules.Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Says at start-up what each absent optional module takes away.</summary>
    private sealed partial class AbsentModuleReport(ModuleList modules, ILogger<AbsentModuleReport> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            foreach (var module in modules.Modules)
            {
                foreach (var (name, loss) in module.Uses.Where(u => !modules.Names.Contains(u.Key)))
                {
                    LogAbsent(logger, module.Name, name, loss);
                }
            }
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(Level = LogLevel.Warning, Message = "Module {Module} runs without module {Absent}: {Loss}")]
        private static partial void LogAbsent(ILogger logger, string module, string absent, string loss);
    }
}

/// <summary>Every event type the modules of this host declare.</summary>
public sealed class EventTypeCatalog(IEnumerable<IEventTypeSource> sources)
{
    /// <summary>Subscribes to every event.</summary>
    public const string Wildcard = "*";

    public IReadOnlyList<EventTypeDefinition> Definitions { get; } =
        sources.SelectMany(s => s.EventTypes).DistinctBy(e => e.Name).OrderBy(e => e.Name, StringComparer.Ordinal).ToList();

    public bool IsKnown(string name) => name == Wildcard || Definitions.Any(e => e.Name == name);

    /// <summary>Names a subscription may list, the wildcard first.</summary>
    public IReadOnlyList<string> Names => [Wildcard, .. Definitions.Select(e => e.Name)];
}
