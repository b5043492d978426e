using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Fundament.UnitTests.Modules;

/// <summary>Every module's settings check names the key of each bad value (the server prints them and exits with code 2).</summary>
public sealed class SettingsValidatorsTests
{
    private static IReadOnlyList<string> Failures<T>(IValidateOptions<T> validator, T options)
        where T : class =>
        validator.Validate(null, options).Failures?.ToList() ?? [];

    [Fact]
    public void DefaultSettings_AreValid_InEveryModule()
    {
        Assert.Empty(Failures(new Fundament.Jobs.JobsOptionsValidator(), new Fundament.Jobs.JobsOptions()));
        Assert.Empty(Failures(new Fundament.Delivery.DeliveryOptionsValidator(), new Fundament.Delivery.DeliveryOptions()));
        Assert.Empty(Failures(new Fundament.Alerts.AlertsOptionsValidator(), new Fundament.Alerts.AlertsOptions()));
        Assert.Empty(Failures(new Fundament.Vault.VaultOptionsValidator(), new Fundament.Vault.VaultOptions()));
        Assert.Empty(Failures(new Fundament.Config.ConfigOptionsValidator(), new Fundament.Config.ConfigOptions()));
        Assert.Empty(Failures(new Fundament.Registry.RegistryOptionsValidator(), new Fundament.Registry.RegistryOptions()));
        Assert.Empty(Failures(new Fundament.Registry.SelfRegistrationOptionsValidator(), new Fundament.Registry.SelfRegistrationOptions()));
        Assert.Empty(Failures(new Fundament.Media.MediaOptionsValidator(), new Fundament.Media.MediaOptions()));
        Assert.Empty(Failures(new Fundament.Gateway.GatewayOptionsValidator(), new Fundament.Gateway.GatewayOptions()));
        Assert.Empty(Failures(new Fundament.Identity.IdentityOptionsValidator(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build()), new Fundament.Identity.IdentityOptions()));
        Assert.Empty(Failures(new Fundament.Core.Hosting.FundamentOptionsValidator(), new Fundament.Core.Hosting.FundamentOptions()));
        Assert.Empty(Failures(new Fundament.Core.Storage.StorageOptionsValidator(), new Fundament.Core.Storage.StorageOptions()));
        Assert.Empty(Failures(new Fundament.Core.Redis.RedisOptionsValidator(), new Fundament.Core.Redis.RedisOptions()));
        Assert.Empty(Failures(new Fundament.Core.Notifications.NotificationOptionsValidator(), new Fundament.Core.Notifications.NotificationOptions()));
        Assert.Empty(Failures(new Fundament.Events.EventsOptionsValidator(), new Fundament.Events.EventsOptions()));
        Assert.Empty(Failures(new Fundament.Cluster.ClusterOptionsValidator(), new Fundament.Cluster.ClusterOptions()));
        Assert.Empty(Failures(new Fundament.Audit.AuditOptionsValidator(), new Fundament.Audit.AuditOptions()));
        Assert.Empty(Failures(new Fundament.Audit.AuditOptionsValidator(), new Fundament.Audit.AuditOptions { VerifyInterval = TimeSpan.Zero }));
        Assert.Equal(["Fundament:Audit:VerifyInterval must be 00:00:00 (off) or between 00:01:00 and 7.00:00:00."],
            Failures(new Fundament.Audit.AuditOptionsValidator(), new Fundament.Audit.AuditOptions { VerifyInterval = TimeSpan.FromSeconds(5) }));
    }

    [Theory]
    [InlineData("")]
    [InlineData("fundament:8080")]
    [InlineData("ftp://fundament/")]
    public void AnAdvertisedUrl_ThatIsSet_MustBeAnAbsoluteHttpUrl(string url) =>
        Assert.Equal(["Fundament:Registry:Self:AdvertiseUrl must be an absolute http(s) URL."],
            Failures(new Fundament.Registry.SelfRegistrationOptionsValidator(), new Fundament.Registry.SelfRegistrationOptions { AdvertiseUrl = url }));

    [Fact]
    public void BadSettings_NameTheirKeys()
    {
        Assert.Equal(
        [
            "Fundament:Jobs:PollInterval must be between 00:00:00.05 and 00:01:00.",
            "Fundament:Jobs:RetryMax must not be below RetryBase.",
            "Fundament:Jobs:Queues:media.process:Concurrency must be between 1 and 256.",
        ], Failures(new Fundament.Jobs.JobsOptionsValidator(), new Fundament.Jobs.JobsOptions
        {
            PollInterval = TimeSpan.Zero,
            RetryBase = TimeSpan.FromMinutes(5),
            RetryMax = TimeSpan.FromMinutes(1),
            Queues = { ["media.process"] = new Fundament.Jobs.JobQueueOptions { Concurrency = 0 } },
        }));
        Assert.Equal(["Fundament:Media:ThumbnailFormat must be webp or jpeg.", "Fundament:Media:Storage:S3:Bucket is required when Storage:Provider is s3."],
            Failures(new Fundament.Media.MediaOptionsValidator(), new Fundament.Media.MediaOptions
            {
                ThumbnailFormat = "gif",
                Storage = new Fundament.Media.Storage.BlobStoreOptions { Provider = "s3" },
            }));
        Assert.Equal(["Fundament:Identity:Lockout:MaxFailedAttempts must be between 1 and 100."],
            Failures(new Fundament.Identity.IdentityOptionsValidator(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build()), new Fundament.Identity.IdentityOptions { Lockout = { MaxFailedAttempts = 0 } }));
        Assert.Equal(["Fundament:Registry:Self:Paths must lie under Fundament's reserved paths (" + string.Join(", ", Fundament.Registry.Routes.RoutePaths.Reserved) + ")."],
            Failures(new Fundament.Registry.SelfRegistrationOptionsValidator(), new Fundament.Registry.SelfRegistrationOptions { Paths = ["/orders"] }));
        Assert.Equal(["Fundament:Notifications:Smtp:From is required when Smtp:Host is set."],
            Failures(new Fundament.Core.Notifications.NotificationOptionsValidator(), new Fundament.Core.Notifications.NotificationOptions { Smtp = { Host = "mail.example.com" } }));
        Assert.Equal(["Fundament:Gateway:RateLimits:bad name!: the name must be 1-64 letters, digits, '-', '_' or '.' (not 'default' or 'disable')."],
            Failures(new Fundament.Gateway.GatewayOptionsValidator(), new Fundament.Gateway.GatewayOptions
            {
                RateLimits = { ["bad name!"] = new Fundament.Gateway.RateLimitPolicyOptions() },
            }).Take(1));
    }

    [Fact]
    public void ClusterSettings_NameTheirKeys() =>
        Assert.Equal(
        [
            "Fundament:Cluster:NodeId must be 1-128 letters, digits, '.', '_' or '-'.",
            "Fundament:Cluster:SuspectAfter must be at least two HeartbeatIntervals.",
            "Fundament:Cluster:GoneAfter must be longer than SuspectAfter.",
        ], Failures(new Fundament.Cluster.ClusterOptionsValidator(), new Fundament.Cluster.ClusterOptions
        {
            NodeId = "node 1/../x",
            HeartbeatInterval = TimeSpan.FromSeconds(20),
            GoneAfter = TimeSpan.FromSeconds(30),
        }));

    [Fact]
    public void SharedStorage_WithoutAnIssuer_IsRefused_NamingTheKey()
    {
        var postgres = new Fundament.Identity.IdentityOptionsValidator(new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Fundament:Storage:Provider"] = "postgres" }).Build());
        var failure = Assert.Single(Failures(postgres, new Fundament.Identity.IdentityOptions()));
        Assert.StartsWith("Fundament:Identity:Issuer is required with PostgreSQL storage", failure, StringComparison.Ordinal);
        Assert.Empty(Failures(postgres, new Fundament.Identity.IdentityOptions { Issuer = "https://fundament.example.com" }));
    }
}
