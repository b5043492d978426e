using Fundament.Core.Notifications;
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

    /// <summary>
    /// When true (default), webhooks and alert channels may reach 127.0.0.1, where the suites' test
    /// receivers listen (an operator's allow entry). The egress tests turn it off to see the default.
    /// </summary>
    protected virtual bool LoopbackReceivers => true;

    public CapturingNotificationSender Notifications { get; } = new();

    /// <summary>Gateway log lines (access log included), to check what they contain.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> GatewayLog { get; } = new();

    /// <summary>What the audit log's own logger said (a broken chain is reported there).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> AuditLogLines { get; } = new();

    public string DataDir { get; }

    /// <summary>Services a test replaces (a resolver, a clock), applied after the server's own.</summary>
    public Action<IServiceCollection>? TestServices { get; init; }

    /// <summary>Extra settings (key, value) for a subclass or a test.</summary>
    protected virtual IEnumerable<KeyValuePair<string, string>> Settings() => [];

    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        LogCanary.Register(AdminPassword);
        LogCanary.Register(Api.UserPassword);
        builder.UseEnvironment("Production");
        builder.UseSetting("Fundament:DataDir", DataDir);
        builder.UseSetting("Fundament:Identity:BootstrapAdminPassword", AdminPassword);
        builder.UseSetting("Fundament:Identity:Issuer", Issuer);
        // The minimum the validator allows: the suite logs in hundreds of times.
        builder.UseSetting("Fundament:Identity:PasswordHashIterations", "10000");
        // Tests drive monitor passes themselves (HealthMonitor.PassAsync), so results are deterministic.
        builder.UseSetting("Fundament:Registry:MonitorEnabled", "false");
        builder.UseSetting("Fundament:Registry:EventsEnabled", "false");
        builder.UseSetting("Fundament:Vault:EventsEnabled", "false");
        builder.UseSetting("Fundament:Delivery:DispatcherEnabled", "false");
        // Domain events reach webhooks when a test runs the relay (RelayEventsAsync).
        builder.UseSetting("Fundament:Messaging:RelayEnabled", "false");
        builder.UseSetting("Fundament:Messaging:Push:Enabled", "false");
        builder.UseSetting("Fundament:Alerts:EvaluatorEnabled", "false");
        builder.UseSetting("Fundament:Cluster:HeartbeatEnabled", "false");
        // Tests queue scheduled backups themselves (BackupScheduler.EnqueueNextAsync).
        builder.UseSetting("Fundament:Backup:SchedulerEnabled", "false");
        // Tests verify the chain when they mean to (AuditVerifier.VerifyAsync).
        builder.UseSetting("Fundament:Audit:VerifyInterval", "00:00:00");
        if (LoopbackReceivers)
        {
            builder.UseSetting("Fundament:Egress:Webhooks:Allow:0", "127.0.0.1/32");
            builder.UseSetting("Fundament:Egress:AlertChannels:Allow:0", "127.0.0.1/32");
        }
        foreach (var (key, value) in Settings())
        {
            builder.UseSetting(key, value);
        }
        builder.ConfigureLogging(logging =>
        {
            logging.AddProvider(new CapturingLoggerProvider("Fundament.Gateway", GatewayLog));
            logging.AddProvider(new CapturingLoggerProvider("Fundament.Audit", AuditLogLines));
            // Every line at Debug and above is checked for credentials (LogCanary), whatever the
            // configured levels of the other providers.
            logging.AddProvider(new LogCanaryProvider());
            logging.AddFilter<LogCanaryProvider>(null, LogLevel.Debug);
        });
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton<TimeProvider>(Time);
            services.AddSingleton<IStartupFilter, SecretHarvester>();
            if (CaptureNotifications)
            {
                services.AddSingleton<INotificationSender>(Notifications);
            }
            TestServices?.Invoke(services);
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
public sealed class ConfiguredFundamentFactory(IEnumerable<KeyValuePair<string, string>> settings, bool captureNotifications = true, bool loopbackReceivers = true) : FundamentFactory
{
    protected override bool CaptureNotifications => captureNotifications;

    protected override bool LoopbackReceivers => loopbackReceivers;

    protected override IEnumerable<KeyValuePair<string, string>> Settings() => settings;
}
