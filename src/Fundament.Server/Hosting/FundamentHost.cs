using Fundament.Backup;
using Fundament.Gateway;
using Fundament.Server.Health;
using Fundament.Server.Telemetry;

namespace Fundament.Server.Hosting;

/// <summary>
/// Builds the platform's host from the command line and settings: the server, the commands that
/// run against the same settings (<c>admin recover</c>, <c>backup</c>, <c>restore</c>), and the
/// scratch hosts <c>backup verify</c> opens a restored copy with.
/// </summary>
internal static class FundamentHost
{
    private const string DefaultUrl = "http://localhost:5080";

    public static WebApplicationBuilder CreateBuilder(string[] args, bool quiet, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        if (quiet)
        {
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        }
        builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
        {
            ["--roles"] = "Fundament:Roles",
            ["--log-format"] = "Fundament:LogFormat",
            ["--data-dir"] = "Fundament:DataDir",
        });
        if (overrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(overrides);
        }
        if (string.IsNullOrWhiteSpace(builder.Configuration[WebHostDefaults.ServerUrlsKey]) && string.IsNullOrWhiteSpace(builder.Configuration["HTTP_PORTS"]))
        {
            builder.Configuration[WebHostDefaults.ServerUrlsKey] = DefaultUrl;
            builder.WebHost.UseUrls(DefaultUrl);
        }

        // Fundament:Logging:Format is the same switch under the name the operations docs use.
        if (string.Equals(builder.Configuration["Fundament:LogFormat"] ?? builder.Configuration["Fundament:Logging:Format"], "json", StringComparison.OrdinalIgnoreCase))
        {
            // Every line written inside a request or a traced operation carries its TraceId and SpanId (scope fields).
            builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);
            builder.Logging.ClearProviders();
            builder.Logging.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.IncludeScopes = true;
            });
        }

        if (!FundamentRoles.TryParse(builder.Configuration["Fundament:Roles"] ?? FundamentRoles.All, out var roles, out var roleError))
        {
            throw new StartupException($"Fundament:Roles (--roles): {roleError}");
        }
        var roleSet = new RoleSet(roles);
        if (roleSet.Runs(FundamentRoles.Gateway))
        {
            // The gateway listens on its own URLs in the same process; requests are told apart by port.
            var gatewayUrls = builder.Configuration["Fundament:Gateway:Urls"] ?? new GatewayOptions().Urls;
            builder.WebHost.UseUrls($"{builder.Configuration[WebHostDefaults.ServerUrlsKey]};{gatewayUrls}");
        }

        builder.Services.AddFundamentCore(builder.Configuration);
        builder.Services.AddFundamentModules(builder.Configuration, roleSet, PlatformModules.All());
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IAlertConditionSource, BackendAlertConditions>());
        builder.Services.AddFundamentTelemetry(builder.Configuration);
        var health = builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database", tags: [HealthEndpoints.ReadyTag]);
        if (!string.IsNullOrWhiteSpace(builder.Configuration["Fundament:Redis:Configuration"]))
        {
            health.AddCheck<RedisHealthCheck>("redis", failureStatus: Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Degraded, tags: [HealthEndpoints.ReadyTag]);
        }
        builder.Services.AddHostedService<HealthMetrics>();
        builder.Services.AddFundamentOpenApi();
        builder.Services.AddHostedService<StartupBanner>();
        builder.Services.AddSingleton<IScratchHostFactory>(new ScratchHostFactory(args));
        return builder;
    }

    /// <summary>A host over the node's own settings with <c>settings</c> on top; never started, only initialized.</summary>
    private sealed class ScratchHostFactory(string[] args) : IScratchHostFactory
    {
        public IHost Create(IReadOnlyDictionary<string, string?> settings) => CreateBuilder(args, quiet: true, settings).Build();
    }
}
