using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Fundament.Tests.Identity;

/// <summary><c>fundament_identity_signing_key_term_remaining_seconds</c>, what the signing-key rule in deploy/prometheus watches.</summary>
public sealed class SigningKeyMetricTests : IAsyncLifetime
{
    private readonly ConfiguredFundamentFactory _factory = new([new("Fundament:Identity:SigningKeyLifetime", "10.00:00:00")]);

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();

    [Fact]
    public async Task TheSigningKeysTermRemaining_CountsDownFromTheConfiguredLifetime()
    {
        await _factory.LoginAsync("admin", FundamentFactory.AdminPassword);
        using var collector = new MetricCollector<double>(_factory.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(),
            "Fundament.Identity.Keys", "fundament.identity.signing_key.term_remaining");
        collector.RecordObservableInstruments();
        var remaining = TimeSpan.FromSeconds(collector.LastMeasurement!.Value);
        Assert.InRange(remaining, TimeSpan.FromDays(10) - TimeSpan.FromMinutes(5), TimeSpan.FromDays(10));

        // A day later (on the fake clock, with no rotation due yet), a day less.
        _factory.Time.Advance(TimeSpan.FromDays(1));
        collector.RecordObservableInstruments();
        Assert.InRange(TimeSpan.FromSeconds(collector.LastMeasurement!.Value), remaining - TimeSpan.FromDays(1) - TimeSpan.FromSeconds(1), remaining - TimeSpan.FromDays(1) + TimeSpan.FromSeconds(1));
    }
}
