using System.Net.Http.Json;
using Fundament.Core.Modules;
using Fundament.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Messaging;

/// <summary>The relay that hands the platform's domain events from the bus to its own handlers: a handler that fails is retried by the bus, not lost.</summary>
public sealed class DomainEventRelayTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private sealed class FlakyHandler(int failures) : IDomainEventHandler
    {
        private int _calls;

        public int Calls => _calls;

        public string Name => "flaky";

        public List<DomainEvent> Handled { get; } = [];

        public Task HandleAsync(DomainEvent domainEvent, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _calls) <= failures)
            {
                throw new InvalidOperationException("the handler's store is down");
            }
            Handled.Add(domainEvent);
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task AFailingHandler_IsRetriedWithTheGroupsBackoff_UntilItTakesTheEvent()
    {
        var flaky = new FlakyHandler(failures: 2);
        await using var factory = new ConfiguredFundamentFactory([]);
        await using var host = factory.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<IDomainEventHandler>(flaky)));
        using var admin = host.CreateClient();
        var login = await (await admin.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = FundamentFactory.AdminPassword }, _ct)).JsonAsync();
        admin.DefaultRequestHeaders.Authorization = new("Bearer", login["access_token"]!.GetValue<string>());

        await host.Services.GetRequiredService<IEventPublisher>().PublishAsync("media.purged", "user:someone", new { id = "asset-9" }, _ct);
        await host.Services.RelayEventsAsync(_ct); // the webhooks take it; the flaky handler fails
        Assert.Empty(flaky.Handled);
        var state = await admin.GetFromJsonAsync<System.Text.Json.Nodes.JsonObject>("/api/v1/topics/fundament.media.purged/subscriptions/fundament.flaky", _ct);
        Assert.Equal(1, state!["ready"]!.GetValue<long>());

        Assert.Equal(0, await host.Services.RelayEventsAsync(_ct)); // backing off
        factory.Time.Advance(TimeSpan.FromSeconds(2));
        await host.Services.RelayEventsAsync(_ct); // fails again
        Assert.Empty(flaky.Handled);
        Assert.Equal(2, flaky.Calls);
        factory.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(1, await host.Services.RelayEventsAsync(_ct));
        var handled = Assert.Single(flaky.Handled);
        Assert.Equal("media.purged", handled.Name);
        Assert.Equal("user:someone", handled.Audience);
        Assert.Equal("asset-9", handled.Data.GetProperty("id").GetString());
        Assert.Equal(0, await host.Services.RelayEventsAsync(_ct));
    }

    [Fact]
    public async Task OnAControlNode_TheRelayAndThePushes_RunByThemselves()
    {
        await using var receiver = await Fundament.Tests.Alerts.WebhookReceiver.StartAsync();
        await using var factory = new ConfiguredFundamentFactory([new("Fundament:Messaging:RelayEnabled", "true"), new("Fundament:Messaging:Push:Enabled", "true")])
        {
            Time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow),
        };
        using var admin = await factory.AdminAsync();
        var me = (await (await admin.GetAsync("/api/v1/me", _ct)).JsonAsync())["id"]!.GetValue<string>();
        Assert.Equal(System.Net.HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = receiver.Url + "/webhook", events = new[] { "media.ready" } }, _ct)).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/topics/orders/subscriptions", new { group = "mailer", push = new { url = receiver.Url + "/push" } }, _ct)).StatusCode);

        await factory.Services.GetRequiredService<IEventPublisher>().PublishAsync("media.ready", $"user:{me}", new { id = "asset-1" }, _ct);
        Assert.Equal(System.Net.HttpStatusCode.Accepted, (await admin.PostAsJsonAsync("/api/v1/topics/orders/messages", new { body = new { order = 1 } }, _ct)).StatusCode);

        // The push goes out by itself; the event becomes a queued webhook delivery by itself (the delivery dispatcher is off in tests).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline && (receiver.Received.IsEmpty || (await (await admin.GetAsync("/api/v1/deliveries?limit=10", _ct)).JsonAsync()).AsArray().Count == 0))
        {
            await Task.Delay(100, _ct);
        }
        var (headers, body) = Assert.Single(receiver.Received);
        Assert.Equal("1", headers["fundament-attempt"]);
        Assert.Equal(1, System.Text.Json.Nodes.JsonNode.Parse(body)!["body"]!["order"]!.GetValue<int>());
        var delivery = Assert.Single((await (await admin.GetAsync("/api/v1/deliveries?limit=10", _ct)).JsonAsync()).AsArray())!;
        Assert.Equal("media.ready", delivery["event"]!.GetValue<string>());
    }

    [Fact]
    public async Task APushReceiverThatNeverAnswers_HoldsUpOnlyItsOwnGroup()
    {
        await using var hanging = await Fundament.Tests.Alerts.WebhookReceiver.StartAsync();
        await using var healthy = await Fundament.Tests.Alerts.WebhookReceiver.StartAsync();
        var release = new TaskCompletionSource();
        hanging.Gate = release.Task;
        // A push may take five minutes: a dispatcher that waited for one group before the next would hold the healthy one that long.
        await using var factory = new ConfiguredFundamentFactory([new("Fundament:Messaging:Push:Enabled", "true"), new("Fundament:Messaging:Push:Timeout", "00:05:00")])
        {
            Time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow),
        };
        using var admin = await factory.AdminAsync();
        // "a..." sorts before "b...": a dispatcher walking groups in order meets the hanging one first.
        Assert.Equal(System.Net.HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/topics/a-stuck/subscriptions", new { group = "p", push = new { url = hanging.Url } }, _ct)).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/topics/b-fine/subscriptions", new { group = "p", push = new { url = healthy.Url } }, _ct)).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Accepted, (await admin.PostAsJsonAsync("/api/v1/topics/a-stuck/messages", new { body = 1 }, _ct)).StatusCode);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline && hanging.Received.IsEmpty)
        {
            await Task.Delay(50, _ct);
        }
        Assert.Single(hanging.Received); // in flight, unanswered

        Assert.Equal(System.Net.HttpStatusCode.Accepted, (await admin.PostAsJsonAsync("/api/v1/topics/b-fine/messages", new { body = 2 }, _ct)).StatusCode);
        while (DateTime.UtcNow < deadline && healthy.Received.IsEmpty)
        {
            await Task.Delay(50, _ct);
        }
        Assert.Single(healthy.Received);
        Assert.False(release.Task.IsCompleted);
        release.SetResult();
    }
}
