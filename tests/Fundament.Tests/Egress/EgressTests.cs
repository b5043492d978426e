using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Core.Egress;
using Fundament.Core.Modules;
using Fundament.Delivery;
using Fundament.Registry.Monitoring;
using Fundament.Tests.Alerts;
using Fundament.Tests.Gateway;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Fundament.Tests.Egress;

/// <summary>
/// Server-side request forgery, tried the ways a tenant would: literal addresses at registration
/// (400), and host names that resolve to a forbidden address only when Fundament connects (refused
/// at connect time). A test resolver stands in for a DNS server that rebinds.
/// </summary>
public sealed class GatewayEgressTests : GatewayTestBase
{
    protected override void TestServices(IServiceCollection services) =>
        services.Replace(ServiceDescriptor.Singleton<IEgressResolver>(new FixedResolver(new()
        {
            ["metadata.test"] = [IPAddress.Parse("169.254.169.254")],
            ["rebind.test"] = [IPAddress.Parse("::ffff:169.254.169.254")],
            ["self.test"] = [IPAddress.Loopback],
        })));

    public static TheoryData<string> LiteralForms() =>
    [
        "169.254.169.254", "2852039166", "0251.0376.0251.0376", "0xA9FEA9FE", "::ffff:169.254.169.254", "[::ffff:a9fe:a9fe]",
        "fd00:ec2::254", "100.100.100.200", "0.0.0.0", "224.0.0.251", "255.255.255.255", "fe80::1",
    ];

    [Theory]
    [MemberData(nameof(LiteralForms))]
    public async Task LiteralForbiddenAddresses_Are400AtRegistration(string address)
    {
        var response = await _api.PostAsJsonAsync("/api/v1/registry/instances", new
        {
            service = "probe",
            address,
            port = 80,
            routes = new[] { new { path = "/probe/{**rest}", auth = "anonymous" } },
        }, _ct);
        await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains("always denied", (await response.JsonAsync())["errors"]!["address"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task FundamentsOwnPorts_Are400AtRegistration()
    {
        foreach (var port in new[] { Node.ApiPort, Node.GatewayPort })
        {
            var response = await _api.PostAsJsonAsync("/api/v1/registry/instances", new { service = "probe", address = "127.0.0.1", port }, _ct);
            await response.AssertProblemAsync(HttpStatusCode.BadRequest);
            Assert.Contains("own listening endpoints", (await response.JsonAsync())["errors"]!["address"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task NamesResolvingToForbiddenAddresses_AreRefusedAtConnectTime()
    {
        // Each name passes registration (nothing literal to refuse) and is refused when the gateway connects.
        async Task RegisterNamedAsync(string service, string address, int port) =>
            Assert.Equal(HttpStatusCode.Created, (await _api.PostAsJsonAsync("/api/v1/registry/instances", new
            {
                service,
                address,
                port,
                routes = new[] { new { path = $"/{service}/{{**rest}}", auth = "anonymous" } },
            }, _ct)).StatusCode);
        await RegisterNamedAsync("meta", "metadata.test", 80);
        await RegisterNamedAsync("rebind", "rebind.test", 80);
        // A name for this very node's API port: the gateway must not become a path into the admin API.
        await RegisterNamedAsync("selfie", "self.test", Node.ApiPort);

        // Counted on this server's own meters (several test servers share the process, and so its metric listeners).
        using var denied = new MetricCollector<long>(_factory.Services.GetRequiredService<IMeterFactory>(), "Fundament.Egress", "fundament.egress.denied");
        await EventuallyAsync(() => _gateway.GetAsync("/meta/latest/meta-data/iam/security-credentials/", _ct), HttpStatusCode.BadGateway);
        await EventuallyAsync(() => _gateway.GetAsync("/rebind/latest/meta-data/", _ct), HttpStatusCode.BadGateway);
        var self = await EventuallyAsync(() => _gateway.GetAsync("/selfie/api/v1/registry/services", _ct), HttpStatusCode.BadGateway);
        Assert.Equal("application/problem+json", self.Content.Headers.ContentType?.MediaType);
        Assert.True(denied.GetMeasurementSnapshot().Where(m => m.Tags["purpose"] as string == "upstreams").Sum(m => m.Value) >= 3);
    }

    [Fact]
    public async Task HealthChecks_OfAForbiddenAddress_AreCritical_WithoutReachingIt()
    {
        var response = await _api.PostAsJsonAsync("/api/v1/registry/instances", new
        {
            service = "checked",
            address = "metadata.test",
            port = 80,
            check = new { http = "/latest/meta-data/", interval = "10s", timeout = "1s" },
        }, _ct);
        var id = (await response.JsonAsync())["instanceId"]!.GetValue<string>();
        await _factory.Services.GetRequiredService<HealthMonitor>().PassAsync(waitForChecks: true, _ct);
        var detail = await (await _api.GetAsync($"/api/v1/registry/instances/{id}", _ct)).JsonAsync();
        Assert.Equal("critical", detail["status"]!.GetValue<string>());
        Assert.Equal("HTTP GET /latest/meta-data/: refused by the egress policy", detail["output"]!.GetValue<string>());
        var history = (await (await _api.GetAsync($"/api/v1/registry/instances/{id}/history", _ct)).JsonAsync()).AsArray();
        Assert.All(history, h => Assert.DoesNotContain("169.254", h!["output"]?.GetValue<string>() ?? "", StringComparison.Ordinal));
    }

}

/// <summary>Webhooks and alert channels: loopback and private addresses are denied unless an operator allows them.</summary>
public sealed class DeliveryEgressTests : IAsyncDisposable
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly List<FundamentFactory> _factories = [];

    private FundamentFactory Start(bool allowLoopback)
    {
        var factory = new ConfiguredFundamentFactory(
            allowLoopback ? [new("Fundament:Egress:Webhooks:Allow:0", "127.0.0.1/32")] : [],
            loopbackReceivers: false)
        {
            TestServices = services => services.Replace(ServiceDescriptor.Singleton<IEgressResolver>(new FixedResolver(new()
            {
                ["receiver.test"] = [IPAddress.Loopback],
            }))),
        };
        _factories.Add(factory);
        return factory;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var factory in _factories)
        {
            await factory.DisposeAsync();
        }
    }

    [Fact]
    public async Task AWebhookToLoopback_IsRefusedByDefault_AtCreationAndAtConnectTime()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var factory = Start(allowLoopback: false);
        using var admin = await factory.AdminAsync();
        using var denied = new MetricCollector<long>(factory.Services.GetRequiredService<IMeterFactory>(), "Fundament.Egress", "fundament.egress.denied");

        var literal = await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = receiver.Url, events = new[] { "media.ready" } }, _ct);
        await literal.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains("loopback or private", (await literal.JsonAsync())["errors"]!["url"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        var localhost = await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = receiver.Url.Replace("127.0.0.1", "localhost", StringComparison.Ordinal), events = new[] { "media.ready" } }, _ct);
        await localhost.AssertProblemAsync(HttpStatusCode.BadRequest);

        // A name that resolves to loopback only when the delivery connects.
        var named = receiver.Url.Replace("127.0.0.1", "receiver.test", StringComparison.Ordinal);
        var hook = await (await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = named, events = new[] { "media.ready" } }, _ct)).JsonAsync();
        var me = await (await admin.GetAsync("/api/v1/me", _ct)).JsonAsync();
        await factory.Services.GetRequiredService<IEventPublisher>().PublishAsync("media.ready", $"user:{me["id"]!.GetValue<string>()}", new { id = "asset-1" }, _ct);
        await factory.Services.RelayEventsAsync(_ct);
        Assert.Equal(1, await factory.Services.GetRequiredService<DeliveryDispatcher>().PassAsync(_ct));
        Assert.Empty(receiver.Received);

        var delivery = (await (await admin.GetAsync($"/api/v1/webhooks/{hook["id"]!.GetValue<string>()}/deliveries", _ct)).JsonAsync()).AsArray().Single()!;
        Assert.Equal("dead", delivery["state"]!.GetValue<string>());
        Assert.Contains("refused", delivery["lastError"]!.GetValue<string>(), StringComparison.Ordinal);
        var audit = (await (await admin.GetAsync("/api/v1/audit?action=delivery.egress_denied", _ct)).JsonAsync())["items"]!.AsArray();
        Assert.Single(audit);
        var webhookDenials = (await (await admin.GetAsync("/api/v1/audit?action=webhook.create&outcome=denied", _ct)).JsonAsync())["items"]!.AsArray();
        Assert.Equal(2, webhookDenials.Count);
        // Two refusals at creation, one at connect time.
        Assert.Equal(3, denied.GetMeasurementSnapshot().Count(m => m.Tags["purpose"] as string == "webhooks"));
    }

    [Fact]
    public async Task AWebhookToLoopback_IsDelivered_WhenAllowListed()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var factory = Start(allowLoopback: true);
        using var admin = await factory.AdminAsync();
        // A delivery's URL may be a secret (Slack's is): its trace keeps the origin only.
        var port = new Uri(receiver.Url).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var traced = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.StartsWith("System.Net.Http", StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.GetTagItem("url.full") is string url && url.Contains(":" + port, StringComparison.Ordinal))
                {
                    traced.Add(url);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var created = await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = receiver.Url, events = new[] { "media.ready" } }, _ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var me = await (await admin.GetAsync("/api/v1/me", _ct)).JsonAsync();
        await factory.Services.GetRequiredService<IEventPublisher>().PublishAsync("media.ready", $"user:{me["id"]!.GetValue<string>()}", new { id = "asset-2" }, _ct);
        await factory.Services.RelayEventsAsync(_ct);
        Assert.Equal(1, await factory.Services.GetRequiredService<DeliveryDispatcher>().PassAsync(_ct));
        Assert.Single(receiver.Received);
        Assert.NotEmpty(traced);
        Assert.All(traced, url => Assert.DoesNotContain("/hook", url, StringComparison.Ordinal));

        // The allow entry is for webhooks: alert channels keep their own, stricter default.
        var channel = await admin.PostAsJsonAsync("/api/v1/alerts/channels", new { name = "local", kind = "webhook", target = receiver.Url }, _ct);
        await channel.AssertProblemAsync(HttpStatusCode.BadRequest);
        var slack = await admin.PostAsJsonAsync("/api/v1/alerts/channels", new { name = "local-slack", kind = "slack", target = "http://10.0.0.5/services/T000/B000/XXXX" }, _ct);
        await slack.AssertProblemAsync(HttpStatusCode.BadRequest);
    }
}
