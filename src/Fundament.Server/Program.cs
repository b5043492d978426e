using Fundament.Core.Keys;
using Fundament.Gateway;
using Fundament.Identity;
using Fundament.Registry;
using Fundament.Registry.Routes;
using Fundament.Server;
using Fundament.Server.Health;
using Fundament.Server.Hosting;
using Fundament.Server.Telemetry;

// Before the host starts its threads: fewer malloc arenas, so libvips (media workers) and native
// libraries do not fragment one per thread. MALLOC_ARENA_MAX in the environment wins.
MallocArenas.Limit();

WebApplication app;
AdminRecoverCommand? recover;
BackupCommand? backup;
try
{
    // `fundament admin recover ...` and `fundament backup|restore ...` run against the same settings, then exit without serving.
    recover = AdminRecoverCommand.Parse(args);
    backup = recover is null ? BackupCommand.Parse(args) : null;
    args = recover?.HostArgs ?? backup?.HostArgs ?? args;
    var builder = FundamentHost.CreateBuilder(args, quiet: recover is not null || backup is not null);
    app = builder.Build();

    // Settings first, before the pipeline resolves services, so a bad value is one clear line.
    app.Services.GetRequiredService<IStartupValidator>().Validate();
    if (backup is not null)
    {
        // Before the master key is loaded: a restore into an empty folder must not generate one.
        return await backup.RunAsync(app.Services, Console.In, Console.Out, Console.Error, CancellationToken.None);
    }
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
