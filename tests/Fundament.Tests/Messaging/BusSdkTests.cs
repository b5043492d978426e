using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Fundament.Client.Messaging;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Fundament.Tests.Messaging;

/// <summary>
/// The SDK's bus and hosted consumer against a real server (Kestrel): publish through
/// <see cref="IFundamentBus"/>, retries of a failure, a poison message dead-lettered at once with
/// its exception type, and an ordered key held back behind its failure only.
/// </summary>
public sealed class BusSdkTests(KestrelFundamentFactory factory) : IClassFixture<KestrelFundamentFactory>
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    public sealed record Order(int N, string Customer);

    /// <summary>Fails order 3 once (transient) and order 5 always (poison); records every call.</summary>
    public sealed class FlakyHandler : IMessageHandler
    {
        public static ConcurrentQueue<(int N, bool Ok)> Calls { get; } = new();

        public Task HandleAsync(ReceivedMessage message, CancellationToken cancellationToken)
        {
            var n = message.BodyAs<Order>()!.N;
            if (n == 3 && !Calls.Any(c => c.N == 3))
            {
                Calls.Enqueue((n, false));
                throw new TimeoutException("the database did not answer");
            }
            if (n == 5)
            {
                Calls.Enqueue((n, false));
                throw new DeadLetterException("order 5 can never be handled");
            }
            Calls.Enqueue((n, true));
            return Task.CompletedTask;
        }
    }

    private async Task<IHost> HostAsync(HttpClient admin, string topic, ConsumerGroupSettings settings)
    {
        var builder = await factory.ServiceBuilderAsync(admin, $"consumer-{topic}",
            principal => new { principal, topicPrefix = topic, capabilities = new[] { "publish", "consume" } }, "/api/v1/topic-grants");
        builder.AddFundamentConsumer<FlakyHandler>(settings, consumer =>
        {
            consumer.BatchSize = 10;
            consumer.Wait = TimeSpan.FromSeconds(1);
            consumer.Lease = TimeSpan.FromMinutes(10);
        });
        return builder.Build();
    }

    [Fact]
    public async Task TheHostedConsumer_RetriesAFailure_DeadLettersPoisonAtOnce_AndHandlesTheRestOnce()
    {
        FlakyHandler.Calls.Clear();
        using var admin = await factory.AdminAsync();
        var topic = $"sdk{Guid.NewGuid():N}"[..12];
        using var host = await HostAsync(admin, topic, new ConsumerGroupSettings(topic, "billing", BackoffInitial: TimeSpan.Zero, BackoffMax: TimeSpan.Zero));
        var bus = host.Services.GetRequiredService<IFundamentBus>();
        await bus.EnsureGroupAsync(new ConsumerGroupSettings(topic, "billing", BackoffInitial: TimeSpan.Zero, BackoffMax: TimeSpan.Zero), _ct);
        for (var n = 1; n <= 6; n++)
        {
            var receipt = await bus.PublishAsync(topic, new Order(n, "c1"), new PublishOptions(Id: $"order-{n}"), _ct);
            Assert.False(receipt.Duplicate);
        }
        // A retried publish with the same id is a duplicate, not a seventh message.
        Assert.True((await bus.PublishAsync(topic, new Order(1, "c1"), new PublishOptions(Id: "order-1"), _ct)).Duplicate);

        await host.StartAsync(_ct);
        try
        {
            for (var i = 0; i < 300 && FlakyHandler.Calls.Count(c => c.Ok) < 5; i++)
            {
                await Task.Delay(100, _ct);
            }
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }

        var calls = FlakyHandler.Calls.ToList();
        Assert.Equal([1, 2, 3, 4, 6], calls.Where(c => c.Ok).Select(c => c.N).Order());
        Assert.Equal(2, calls.Count(c => c.N == 3));
        Assert.Equal(1, calls.Count(c => c.N == 5));
        var dead = Assert.Single((await (await admin.GetAsync($"/api/v1/dead-letters?topic={topic}&group=billing", _ct)).JsonAsync()).AsArray())!;
        Assert.Equal("order-5", dead["messageId"]!.GetValue<string>());
        Assert.Equal(typeof(DeadLetterException).FullName, dead["exceptionType"]!.GetValue<string>());
        Assert.Equal(1, dead["attempts"]!.GetValue<int>());
        var state = await (await admin.GetAsync($"/api/v1/topics/{topic}/subscriptions/billing", _ct)).JsonAsync();
        Assert.Equal(0, state["ready"]!.GetValue<long>() + state["leased"]!.GetValue<long>());
    }
}
