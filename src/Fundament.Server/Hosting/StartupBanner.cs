using Fundament.Identity;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Fundament.Server.Hosting;

/// <summary>
/// Prints where everything is once the server listens. Written to the console directly, not
/// through the logger: the first-start admin password must not travel into log collectors. With
/// JSON logs it is one JSON object, shaped like the log lines, so the output stays one object per line.
/// </summary>
internal sealed class StartupBanner(
    IConfiguration configuration,
    IHostApplicationLifetime lifetime,
    IServer server,
    IServiceProvider services,
    IOptions<FundamentOptions> options,
    IOptions<StorageOptions> storage,
    RoleSet roles) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(Print);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Print()
    {
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
        var api = addresses.FirstOrDefault() ?? "(no HTTP listener)";
        var version = typeof(StartupBanner).Assembly.GetName().Version?.ToString(3);
        var store = storage.Value.IsPostgres ? "postgres" : $"sqlite ({Path.Combine(options.Value.FullDataDir, "fundament.db")})";
        var lines = new List<string>
        {
            $"Fundament {version} is running",
            $"  roles:    {roles}",
            $"  API:      {string.Join(", ", addresses.DefaultIfEmpty(api))}",
            $"  OpenAPI:  {api}/openapi/v1.json",
            $"  health:   {api}/health/ready",
            $"  metrics:  {api}/metrics",
            $"  data:     {options.Value.FullDataDir}",
            roles.Runs(FundamentRoles.Gateway) ? $"  gateway:  {services.GetService<IOptions<Fundament.Gateway.GatewayOptions>>()?.Value.Urls}" : "  gateway:  (not in this process's roles)",
            $"  storage:  {store}",
        };
        var admin = services.GetService<IBootstrapAdmin>();
        if (string.Equals(configuration["Fundament:LogFormat"] ?? configuration["Fundament:Logging:Format"], "json", StringComparison.OrdinalIgnoreCase))
        {
            var generated = admin?.TakeGeneratedPassword();
            Console.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["Timestamp"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture),
                ["LogLevel"] = "Information",
                ["Category"] = "Fundament.Startup",
                ["Message"] = $"Fundament {version} is running",
                ["State"] = new Dictionary<string, object?>
                {
                    ["roles"] = roles.ToString(),
                    ["api"] = addresses,
                    ["openapi"] = $"{api}/openapi/v1.json",
                    ["data"] = options.Value.FullDataDir,
                    ["storage"] = store,
                    ["adminUsername"] = generated is null ? null : admin!.Username,
                    ["adminPassword"] = generated,
                },
            }));
            Console.Out.Flush();
            return;
        }
        if (admin?.TakeGeneratedPassword() is { } password)
        {
            lines.Add($"  admin:    username '{admin.Username}', password '{password}'");
            lines.Add("            (shown only now; log in and change it: POST /api/v1/me/password)");
        }
        Console.Out.WriteLine(string.Join(Environment.NewLine, lines));
        Console.Out.Flush();
    }
}
