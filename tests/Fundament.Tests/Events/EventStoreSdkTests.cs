using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Client.Events;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Fundament.Tests.Events;

/// <summary>
/// The SDK's hosted subscription consumer against a real server: handler failures are retried in
/// order, a poison event is parked at once, and nothing the handler did not fail on is parked.
/// </summary>
public sealed class EventStoreSdkTests(KestrelFundamentFactory factory) : IClassFixture<KestrelFundamentFactory>
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    public sealed record Item(int N);

    /// <summary>Fails item 3 once (a transient error) and item 5 always (poison, parked at once); records every call.</summary>
    public sealed class FlakyHandler : IEventHandler
    {
        public static ConcurrentQueue<(int N, bool Ok)> Calls { get; } = new();

        public Task HandleAsync(StoredEvent e, CancellationToken cancellationToken)
        {
            var n = e.As<Item>()!.N;
            if (n == 3 && !Calls.Any(c => c.N == 3))
            {
                Calls.Enqueue((n, false));
                throw new TimeoutException("the database did not answer");
            }
            if (n == 5)
            {
                Calls.Enqueue((n, false));
                throw new ParkEventException("item 5 can never be handled");
            }
            Calls.Enqueue((n, true));
            return Task.CompletedTask;
        }
    }

    /// <summary>A service host with the SDK, as a new client with read and append on <paramref name="prefix"/>, consuming <paramref name="settings"/>.</summary>
    private async Task<IHost> ConsumerHostAsync<THandler>(HttpClient admin, string prefix, SubscriptionSettings settings)
        where THandler : class, IEventHandler
    {
        var builder = await factory.ServiceBuilderAsync(admin, $"consumer-{prefix}",
            principal => new { principal, streamPrefix = prefix, capabilities = new[] { "read", "append" } }, "/api/v1/stream-grants");
        builder.AddFundamentEventStore(map => map.Map<Item>("Item"));
        builder.AddFundamentSubscription<THandler>(settings, consumer =>
        {
            consumer.BatchSize = 10;
            consumer.Wait = TimeSpan.FromSeconds(1);
            // Long enough on the server's (fake) clock that no lease runs out while a test moves it.
            consumer.Lease = TimeSpan.FromMinutes(10);
        });
        return builder.Build();
    }

    public interface IMissing;

    /// <summary>Needs a service nobody registered: it can never be built.</summary>
    public sealed class UnbuildableHandler(IMissing missing) : IEventHandler
    {
        public Task HandleAsync(StoredEvent e, CancellationToken cancellationToken) => Task.FromResult(missing);
    }

    [Fact]
    public async Task AHandlerThatCannotBeBuilt_ParksNothing_AndUsesUpNoAttempt()
    {
        using var admin = await factory.AdminAsync();
        var prefix = $"sdk{Guid.NewGuid():N}"[..12];
        var name = $"{prefix}-broken";
        using var host = await ConsumerHostAsync<UnbuildableHandler>(admin, prefix, new SubscriptionSettings(name, StreamPrefix: prefix, MaxAttempts: 1));
        await host.Services.GetRequiredService<IEventStore>().AppendAsync($"{prefix}-1", ExpectedVersion.Any, [new EventData(new Item(1)), new EventData(new Item(2))], _ct);

        await host.StartAsync(_ct);
        try
        {
            // Rounds fail and back off on the shared clock; leases would run out many times over.
            for (var i = 0; i < 30; i++)
            {
                factory.Time.Advance(TimeSpan.FromMinutes(11));
                await Task.Delay(100, _ct);
            }
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
        using var later = await factory.AdminAsync(); // hours later on the shared clock: a fresh token
        var subscription = await (await later.GetAsync($"/api/v1/subscriptions/{name}", _ct)).JsonAsync();
        Assert.Equal(0, subscription["parked"]!.GetValue<long>());
        Assert.Equal(2, subscription["leased"]!.GetValue<long>() + subscription["retrying"]!.GetValue<long>());
    }

    [Fact]
    public async Task TheHostedConsumer_RetriesAFailureInOrder_ParksWhatItIsToldTo_AndNothingElse()
    {
        FlakyHandler.Calls.Clear();
        using var admin = await factory.AdminAsync();
        var prefix = $"sdk{Guid.NewGuid():N}"[..12];
        var name = $"{prefix}-consumer";
        using var host = await ConsumerHostAsync<FlakyHandler>(admin, prefix, new SubscriptionSettings(name, StreamPrefix: prefix));

        // Appended through the SDK itself, six items in one stream.
        var store = host.Services.GetRequiredService<IEventStore>();
        var written = await store.AppendAsync($"{prefix}-1", ExpectedVersion.NoStream, Enumerable.Range(1, 6).Select(n => new EventData(new Item(n))).ToList(), _ct);
        Assert.Equal(5, written.ToVersion);
        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => store.AppendAsync($"{prefix}-1", ExpectedVersion.Exactly(2), [new EventData(new Item(7))], _ct));

        await host.StartAsync(_ct);
        try
        {
            // Item 3 waits out its retry backoff (1 s) on the server's clock. The clock moves on until
            // the retry came: the consumer's nack may reach the server after any one move (and then
            // counts its backoff from the moved clock), so one move is not enough.
            for (var i = 0; i < 300 && !FlakyHandler.Calls.Contains((3, false)); i++)
            {
                await Task.Delay(100, _ct);
            }
            for (var i = 0; i < 100 && !FlakyHandler.Calls.Contains((3, true)); i++)
            {
                factory.Time.Advance(TimeSpan.FromSeconds(2));
                await Task.Delay(100, _ct);
            }
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
        // In order: 3 failed, came back and succeeded before anything after it was handled.
        Assert.Equal([(1, true), (2, true), (3, false), (3, true), (4, true), (5, false), (6, true)], calls);
        var parked = (await (await admin.GetAsync($"/api/v1/subscriptions/{name}/parked", _ct)).JsonAsync())["events"]!.AsArray();
        var only = Assert.Single(parked);
        Assert.Equal(5, only!["event"]!["data"]!["n"]!.GetValue<int>());
        Assert.Contains("ParkEventException: item 5 can never be handled", only["reason"]!.GetValue<string>());
        var subscription = await (await admin.GetAsync($"/api/v1/subscriptions/{name}", _ct)).JsonAsync();
        Assert.Equal(0, subscription["leased"]!.GetValue<long>());
        Assert.Equal(0, subscription["retrying"]!.GetValue<long>());
    }
}
