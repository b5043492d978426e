using Fundament.Core.Keys;
using Fundament.Gateway;
using Fundament.Identity;
using Fundament.Registry;
using Fundament.Registry.Routes;
using Fundament.Server;
using Fundament.Server.Health;
using Fundament.Server.Hosting;
using Fundament.Server.Telemetry;

const string DefaultUrl = "http://localhost:5080";

// Before the host starts its threads: fewer malloc arenas, so libvips (media workers) and native
// libraries do not fragment one per thread. MALLOC_ARENA_MAX in the environment wins.
MallocArenas.Limit();

WebApplication app;
AdminRecoverCommand? recover;
try
{
    // `fundament admin recover ...` runs against the same settings, then exits without serving.
    recover = AdminRecoverCommand.Parse(args);
    args = recover?.HostArgs ?? args;
    var builder = WebApplication.CreateBuilder(args);
    if (recover is not null)
    {
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
    }
    builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
    {
        ["--roles"] = "Fundament:Roles",
        ["--log-format"] = "Fundament:LogFormat",
        ["--data-dir"] = "Fundament:DataDir",
    });
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
    var gateway = roleSet.Runs(FundamentRoles.Gateway);
    if (gateway)
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

    app = builder.Build();

    // Settings first, before the pipeline resolves services, so a bad value is one clear line.
    app.Services.GetRequiredService<IStartupValidator>().Validate();
    _ = app.Services.GetRequiredService<MasterKeyRing>();
    if (recover is not null)
    {
        return await recover.RunAsync(app.Services, Console.In, Console.Out, Console.Error, CancellationToken.None);
    }
    // Migrations, the master key check and seeding, before the host starts: a refusal is one line and exit code 2.
    await app.Services.GetRequiredService<FundamentInitializer>().InitializeAsync(CancellationToken.None);

    app.UseFundamentModules();
    // Explicit, after the modules' middleware (the gateway branches off there): otherwise the host adds endpoint routing first, and
    // every gateway request would be matched against the API's routes before being proxied.
    app.UseRouting();
    app.UseFundamentHttp();
    app.UseAuthentication();
    app.UseAuthorization();

    app.MapFundamentHealth();
    app.MapPrometheusScrapingEndpoint("/metrics").AllowAnonymous();
    app.MapOpenApi("/openapi/{documentName}.json").AllowAnonymous();
    app.MapGet("/", (IOptions<FundamentOptions> options) => TypedResults.Ok(new
    {
        name = "fundament",
        version = typeof(Program).Assembly.GetName().Version?.ToString(3),
        roles = options.Value.Roles,
        openapi = "/openapi/v1.json",
    })).AllowAnonymous().ExcludeFromDescription();
    app.MapFundamentModules();
    app.EnsureEveryEndpointHasAPolicy();
    app.EnsurePlatformPathsAreReserved();
}
catch (StartupException ex)
{
    return ConfigurationError(ex.Message);
}
catch (OptionsValidationException ex)
{
    return ConfigurationError(string.Join(Environment.NewLine + "  - ", ex.Failures));
}

try
{
    await app.RunAsync();
    return 0;
}
catch (OptionsValidationException ex)
{
    return ConfigurationError(string.Join(Environment.NewLine + "  - ", ex.Failures));
}
catch (StartupException ex)
{
    return ConfigurationError(ex.Message);
}

static int ConfigurationError(string message)
{
    Console.Error.WriteLine($"fundament: cannot start: {message}");
    return 2;
}

/// <summary>Entry point; public for the in-process test host.</summary>
public partial class Program;
