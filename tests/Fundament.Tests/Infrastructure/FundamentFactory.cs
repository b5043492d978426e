using Fundament.Notifications;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Fundament.Tests.Infrastructure;

/// <summary>
/// The whole server in process, on a fresh data folder, with a fake clock and a notification
/// sender that keeps what it was asked to deliver. Subclasses pick the storage backend.
/// </summary>
public abstract class FundamentFactory : WebApplicationFactory<Program>, IAsyncLifetime
{
    public const string AdminPassword = "Correct-Horse-Battery-42";
    public const string Issuer = "http://localhost";

    protected FundamentFactory()
    {
        DataDir = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(DataDir);
    }

    public FakeTimeProvider Time { get; init; } = new(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));

    /// <summary>When true (default) messages are kept in <see cref="Notifications"/> instead of being sent.</summary>
    protected virtual bool CaptureNotifications => true;

    public CapturingNotificationSender Notifications { get; } = new();

    /// <summary>Gateway log lines (access log included), to check what they contain.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> GatewayLog { get; } = new();

    public string DataDir { get; }

    /// <summary>Extra settings (key, value) for a subclass or a test.</summary>
    protected virtual IEnumerable<KeyValuePair<string, string>> Settings() => [];

    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production");
        builder.UseSetting("Fundament:DataDir", DataDir);
        builder.UseSetting("Fundament:Identity:BootstrapAdminPassword", AdminPassword);
        builder.UseSetting("Fundament:Identity:Issuer", Issuer);
        // The minimum the validator allows: the suite logs in hundreds of times.
        builder.UseSetting("Fundament:Identity:PasswordHashIterations", "10000");
        // Tests drive monitor passes themselves (HealthMonitor.PassAsync), so results are deterministic.
        builder.UseSetting("Fundament:Registry:MonitorEnabled", "false");
        builder.UseSetting("Fundament:Delivery:DispatcherEnabled", "false");
        builder.UseSetting("Fundament:Alerts:EvaluatorEnabled", "false");
        foreach (var (key, value) in Settings())
        {
            builder.UseSetting(key, value);
        }
        builder.ConfigureLogging(logging => logging.AddProvider(new CapturingLoggerProvider("Fundament.Gateway", GatewayLog)));
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton<TimeProvider>(Time);
            if (CaptureNotifications)
            {
                services.AddSingleton<INotificationSender>(Notifications);
            }
        });
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        GC.SuppressFinalize(this);
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a pooled connection; the temp folder is cleaned by the OS.
        }
    }
}

/// <summary>The embedded default: SQLite in the data folder.</summary>
public sealed class SqliteFundamentFactory : FundamentFactory;

/// <summary>A server with exactly the settings given, e.g. one of several replicas on one database.</summary>
public sealed class ConfiguredFundamentFactory(IEnumerable<KeyValuePair<string, string>> settings, bool captureNotifications = true) : FundamentFactory
{
    protected override bool CaptureNotifications => captureNotifications;

    protected override IEnumerable<KeyValuePair<string, string>> Settings() => settings;
}
