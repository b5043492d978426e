using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Fundament.Core.Egress;
using Fundament.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Fundament.Tests.Egress;

/// <summary>The egress policy's decisions, on the guard itself: every address form, every purpose, every rule shape.</summary>
public sealed class EgressGuardTests : IDisposable
{
    private readonly TestMeterFactory _meters = new();
    private readonly List<long> _denied = [];
    private readonly MeterListener _listener = new();

    public EgressGuardTests()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            // Only this test's meters: servers of other test classes count into their own.
            if (instrument.Name == "fundament.egress.denied" && ReferenceEquals(instrument.Meter.Scope, _meters))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, _) => { lock (_denied) { _denied.Add(value); } });
        _listener.Start();
    }

    public void Dispose()
    {
        _listener.Dispose();
        _meters.Dispose();
    }

    private EgressGuard Guard(EgressOptions? options = null, params string[] listening)
    {
        var services = new ServiceCollection();
        if (listening.Length > 0)
        {
            services.AddSingleton<IServer>(new ListeningServer(listening));
        }
        return new EgressGuard(Options.Create(options ?? new EgressOptions()), new OwnEndpoints(services.BuildServiceProvider(), TimeProvider.System), _meters, NullLogger<EgressGuard>.Instance);
    }

    /// <summary>Cloud metadata, link-local, "this network", multicast, broadcast: in every spelling.</summary>
    public static TheoryData<string> AlwaysDenied() =>
    [
        "169.254.169.254",
        "2852039166",                 // decimal
        "0251.0376.0251.0376",        // octal
        "0xA9FEA9FE",                 // hex
        "169.254.43518",              // short form
        "::ffff:169.254.169.254",     // IPv4-mapped
        "[::ffff:a9fe:a9fe]",         // mapped, bracketed, hex
        "64:ff9b::a9fe:a9fe",         // NAT64
        "2002:a9fe:a9fe::1",          // 6to4
        "fd00:ec2::254",              // AWS metadata over IPv6
        "100.100.100.200",            // Alibaba metadata
        "168.63.129.16",              // Azure WireServer
        "0.0.0.0",
        "0",
        "0.1.2.3",
        "224.0.0.1",
        "255.255.255.255",
        "fe80::1",
        "ff02::1",
        "::",
    ];

    [Theory]
    [MemberData(nameof(AlwaysDenied))]
    public void AlwaysDeniedAddresses_AreRefused_ForEveryPurpose_EvenWhenEverythingIsAllowed(string address)
    {
        var everything = new EgressRules { Allow = ["0.0.0.0/0", "::/0"] };
        var guard = Guard(new EgressOptions { Upstreams = everything, Webhooks = everything, AlertChannels = everything });
        foreach (var purpose in Enum.GetValues<EgressPurpose>())
        {
            var decision = guard.CheckTarget(purpose, address, 80);
            Assert.False(decision.Allowed, $"{address} was allowed for {purpose}");
            Assert.Contains("always denied", decision.Reason, StringComparison.Ordinal);
        }
        Assert.Equal(3, _denied.Count);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.1")]
    [InlineData("2130706433")]
    [InlineData("localhost")]
    [InlineData("api.localhost")]
    [InlineData("::1")]
    [InlineData("::ffff:10.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("172.16.0.1")]
    [InlineData("192.168.1.1")]
    [InlineData("100.64.0.1")]
    [InlineData("fd12:3456::1")]
    public void LoopbackAndPrivate_AreDeniedToWebhooksAndAlertChannels_ButServeAsUpstreams(string address)
    {
        var guard = Guard();
        Assert.False(guard.CheckTarget(EgressPurpose.Webhooks, address, 443).Allowed);
        Assert.False(guard.CheckTarget(EgressPurpose.AlertChannels, address, 443).Allowed);
        Assert.True(guard.CheckTarget(EgressPurpose.Upstreams, address, 443).Allowed);
    }

    [Fact]
    public void PublicAddressesAndUnresolvedNames_PassTheRegistrationCheck()
    {
        var guard = Guard();
        Assert.True(guard.CheckTarget(EgressPurpose.Webhooks, "93.184.216.34", 443).Allowed);
        Assert.True(guard.CheckTarget(EgressPurpose.Webhooks, "2606:2800:220:1::1", 443).Allowed);
        // A name is judged on the address it resolves to, at connect time.
        Assert.True(guard.CheckTarget(EgressPurpose.Webhooks, "hooks.example.com", 443).Allowed);
        Assert.Empty(_denied);
    }

    [Fact]
    public void AnAllowEntry_OpensExactlyWhatItNames()
    {
        var guard = Guard(new EgressOptions { Webhooks = new EgressRules { Allow = ["127.0.0.1/32", "hooks.internal", "*.corp.example"] } });
        Assert.True(guard.CheckTarget(EgressPurpose.Webhooks, "127.0.0.1", 8080).Allowed);
        Assert.False(guard.CheckTarget(EgressPurpose.Webhooks, "127.0.0.2", 8080).Allowed);
        Assert.False(guard.CheckTarget(EgressPurpose.AlertChannels, "127.0.0.1", 8080).Allowed);
        // A name rule decides for whatever the name resolves to (the operator trusts that name).
        Assert.True(guard.Evaluate(EgressPurpose.Webhooks, "hooks.internal", IPAddress.Parse("10.0.0.7"), 443).Allowed);
        Assert.True(guard.Evaluate(EgressPurpose.Webhooks, "a.b.corp.example", IPAddress.Parse("10.0.0.8"), 443).Allowed);
        Assert.False(guard.Evaluate(EgressPurpose.Webhooks, "corp.example.evil", IPAddress.Parse("10.0.0.8"), 443).Allowed);
        // But never for an always-denied address.
        Assert.False(guard.Evaluate(EgressPurpose.Webhooks, "hooks.internal", IPAddress.Parse("169.254.169.254"), 80).Allowed);
    }

    [Fact]
    public void TheMostSpecificRule_Decides_AndDenyWinsATie()
    {
        var guard = Guard(new EgressOptions
        {
            Upstreams = new EgressRules { Allow = ["10.1.0.0/16", "10.9.9.9"], Deny = ["10.0.0.0/8", "10.9.9.9/32", "db.internal"] },
        });
        Assert.True(guard.CheckTarget(EgressPurpose.Upstreams, "10.1.2.3", 80).Allowed);
        Assert.False(guard.CheckTarget(EgressPurpose.Upstreams, "10.2.0.1", 80).Allowed);
        Assert.False(guard.CheckTarget(EgressPurpose.Upstreams, "10.9.9.9", 80).Allowed);
        Assert.True(guard.CheckTarget(EgressPurpose.Upstreams, "192.168.0.1", 80).Allowed);
        var named = guard.CheckTarget(EgressPurpose.Upstreams, "db.internal", 5432);
        Assert.False(named.Allowed);
        Assert.Contains("Fundament:Egress:Upstreams:Deny", named.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void FundamentsOwnPorts_AreDenied_UnlessTheCallerMayReachThem()
    {
        var guard = Guard(null, "http://127.0.0.1:5999", "http://[::]:8088");
        Assert.False(guard.Evaluate(EgressPurpose.Upstreams, null, IPAddress.Loopback, 5999).Allowed);
        Assert.False(guard.Evaluate(EgressPurpose.Upstreams, null, IPAddress.IPv6Loopback, 8088).Allowed);
        Assert.False(guard.Evaluate(EgressPurpose.Upstreams, null, IPAddress.Parse("::ffff:127.0.0.1"), 8088).Allowed);
        Assert.True(guard.Evaluate(EgressPurpose.Upstreams, null, IPAddress.Loopback, 6000).Allowed);
        // The gateway routing the fundament service may reach the API port, never a gateway port.
        Assert.True(guard.Evaluate(EgressPurpose.Upstreams, null, IPAddress.Loopback, 5999, port => port != 8088).Allowed);
        Assert.False(guard.Evaluate(EgressPurpose.Upstreams, null, IPAddress.Loopback, 8088, port => port != 8088).Allowed);
    }

    [Fact]
    public void BadRules_AreReported_WithTheirKey()
    {
        var problems = EgressGuard.Problems(new EgressOptions
        {
            Webhooks = new EgressRules { Allow = ["127.0.0.1/33", "10.0.0.1/8", "not a host!", "hooks.internal"] },
        });
        Assert.Equal(3, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("Fundament:Egress:Webhooks:Allow:0 ", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Fundament:Egress:Webhooks:Allow:1 ", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Fundament:Egress:Webhooks:Allow:2 ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Connector_ChecksTheResolvedAddresses_AndConnectsOnlyToAllowedOnes()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var resolver = new FixedResolver(new()
        {
            ["metadata.test"] = [IPAddress.Parse("169.254.169.254")],
            ["mixed.test"] = [IPAddress.Parse("169.254.169.254"), IPAddress.Loopback],
            ["loopback.test"] = [IPAddress.Loopback],
        });
        var connector = new EgressConnector(Guard(), resolver);
        var ct = TestContext.Current.CancellationToken;

        var metadata = await Assert.ThrowsAsync<EgressDeniedException>(async () => await connector.ConnectAsync(EgressPurpose.Upstreams, "metadata.test", 80, null, ct));
        Assert.Contains("169.254.169.254", metadata.Message, StringComparison.Ordinal);
        await using (var stream = await connector.ConnectAsync(EgressPurpose.Upstreams, "mixed.test", port, null, ct))
        {
            Assert.True(stream.CanWrite);
        }
        await Assert.ThrowsAsync<EgressDeniedException>(async () => await connector.ConnectAsync(EgressPurpose.Webhooks, "loopback.test", port, null, ct));
        // The SMTP server is the operator's own choice: only the always-denied checks apply to it.
        using (var socket = await connector.ConnectSocketAsync(EgressPurpose.AlertChannels, "loopback.test", port, null, ct, operatorConfigured: true))
        {
            Assert.True(socket.Connected);
        }
        await Assert.ThrowsAsync<EgressDeniedException>(async () => await connector.ConnectSocketAsync(EgressPurpose.AlertChannels, "metadata.test", 25, null, ct, operatorConfigured: true));
        Assert.Equal(3, _denied.Count);
    }

    private sealed class ListeningServer(string[] addresses) : IServer
    {
        public IFeatureCollection Features { get; } = Create(addresses);

        private static FeatureCollection Create(string[] addresses)
        {
            var features = new FeatureCollection();
            var feature = new ServerAddressesFeature();
            foreach (var address in addresses)
            {
                feature.Addresses.Add(address);
            }
            features.Set<IServerAddressesFeature>(feature);
            return features;
        }

        public Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
            where TContext : notnull => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public void Dispose()
        {
        }

        private sealed class ServerAddressesFeature : IServerAddressesFeature
        {
            public ICollection<string> Addresses { get; } = [];

            public bool PreferHostingUrls { get; set; }
        }
    }
}

/// <summary>A resolver that answers from a table (other names through DNS), standing in for a DNS server that rebinds.</summary>
public sealed class FixedResolver(Dictionary<string, IPAddress[]> table) : IEgressResolver
{
    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        table.TryGetValue(host, out var addresses)
            ? Task.FromResult(addresses)
            : Dns.GetHostAddressesAsync(host, cancellationToken);
}
