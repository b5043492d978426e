using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fundament.Core.Modules;
using Fundament.Delivery;
using Fundament.Tests.Alerts;
using Fundament.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using StandardWebhooks;

namespace Fundament.Tests.Delivery;

/// <summary>
/// Deliveries a receiver can verify with any Standard Webhooks library: the .NET one always, the
/// reference npm package (<c>standardwebhooks</c>) when <c>tests/webhook-verifier</c> is installed
/// (<c>FUNDAMENT_TEST_WEBHOOK_VERIFIER</c>; CI sets it). The clock starts at the real time, since
/// verifiers refuse a timestamp more than five minutes away from their own.
/// </summary>
public sealed class StandardWebhooksTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly ConfiguredFundamentFactory _factory = new([]) { Time = new FakeTimeProvider(DateTimeOffset.UtcNow) };
    private WebhookReceiver _receiver = null!;

    public async ValueTask InitializeAsync() => _receiver = await WebhookReceiver.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _receiver.DisposeAsync();
        await _factory.DisposeAsync();
    }

    private async Task<(IReadOnlyDictionary<string, string> Headers, string Body)> DeliverAsync(HttpClient admin)
    {
        var me = await (await admin.GetAsync("/api/v1/me", _ct)).JsonAsync();
        var before = _receiver.Received.Count;
        await _factory.Services.GetRequiredService<IEventPublisher>().PublishAsync("media.ready", $"user:{me["id"]!.GetValue<string>()}", new { id = Guid.NewGuid() }, _ct);
        // Two groups take media.ready: the webhooks and the analysis module (which ignores an asset it does not know).
        Assert.Equal(2, await _factory.Services.RelayEventsAsync(_ct));
        Assert.Equal(1, await _factory.Services.GetRequiredService<DeliveryDispatcher>().PassAsync(_ct));
        var (headers, body) = _receiver.Received.ElementAt(before);
        return (headers, Encoding.UTF8.GetString(body));
    }

    private static bool VerifiesWithDotNet(string secret, IReadOnlyDictionary<string, string> headers, string body)
    {
        var dictionary = new HeaderDictionary();
        foreach (var name in new[] { "webhook-id", "webhook-timestamp", "webhook-signature" })
        {
            dictionary[name] = headers[name];
        }
        try
        {
            new StandardWebhook(secret).Verify(body, dictionary);
            return true;
        }
        catch (StandardWebhooks.Diagnostics.WebhookVerificationException)
        {
            return false;
        }
    }

    /// <summary>
    /// The specification's rule, checked directly: some <c>v1,</c> signature in the header is the
    /// HMAC of <c>id.timestamp.body</c> under the secret. (The .NET package, 1.1.2, compares only the
    /// first signature of the header, so it cannot check the second secret of a rotation.)
    /// </summary>
    private static bool MatchesAnySignature(string secret, IReadOnlyDictionary<string, string> headers, string body)
    {
        var expected = new StandardWebhook(secret).Sign(headers["webhook-id"], DateTimeOffset.FromUnixTimeSeconds(long.Parse(headers["webhook-timestamp"], System.Globalization.CultureInfo.InvariantCulture)), body);
        return headers["webhook-signature"].Split(' ').Contains(expected);
    }

    /// <summary>What the reference npm library says, per secret; null when it is not installed here.</summary>
    private async Task<bool[]?> VerifiesWithNodeAsync(IReadOnlyDictionary<string, string> headers, string body, params string[] secrets)
    {
        var dir = Environment.GetEnvironmentVariable("FUNDAMENT_TEST_WEBHOOK_VERIFIER");
        if (dir is not { Length: > 0 } || !Directory.Exists(Path.Combine(dir, "node_modules", "standardwebhooks")))
        {
            return null;
        }
        var start = new ProcessStartInfo("node", "verify.mjs")
        {
            WorkingDirectory = dir, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var node = Process.Start(start)!;
        await node.StandardInput.WriteAsync(JsonSerializer.Serialize(new
        {
            secrets,
            headers = new Dictionary<string, string> { ["webhook-id"] = headers["webhook-id"], ["webhook-timestamp"] = headers["webhook-timestamp"], ["webhook-signature"] = headers["webhook-signature"] },
            body,
        }));
        node.StandardInput.Close();
        var output = await node.StandardOutput.ReadToEndAsync(_ct);
        var errors = await node.StandardError.ReadToEndAsync(_ct);
        await node.WaitForExitAsync(_ct);
        Assert.True(node.ExitCode == 0, errors);
        return JsonNode.Parse(output)!.AsArray().Select(r => r!["ok"]!.GetValue<bool>()).ToArray();
    }

    [Fact]
    public async Task Deliveries_VerifyWithStandardWebhooks_AndARotationOverlaps()
    {
        using var admin = await _factory.AdminAsync();
        var created = await (await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = _receiver.Url, events = new[] { "media.ready" } }, _ct)).JsonAsync();
        var id = created["id"]!.GetValue<string>();
        var first = created["secret"]!.GetValue<string>();
        Assert.StartsWith("whsec_", first, StringComparison.Ordinal);

        var (headers, body) = await DeliverAsync(admin);
        Assert.Equal(headers["X-Fundament-Delivery"], headers["webhook-id"]);
        Assert.True(VerifiesWithDotNet(first, headers, body));
        Assert.False(VerifiesWithDotNet("whsec_" + Convert.ToBase64String(new byte[32]), headers, body));
        var npmRequired = Environment.GetEnvironmentVariable("FUNDAMENT_TEST_WEBHOOK_VERIFIER") is { Length: > 0 };
        if (await VerifiesWithNodeAsync(headers, body, first) is { } byNode)
        {
            Assert.Equal([true], byNode);
        }
        else
        {
            Assert.False(npmRequired, "FUNDAMENT_TEST_WEBHOOK_VERIFIER is set but tests/webhook-verifier is not installed there");
        }

        // Rotation: for a day both secrets verify, so receivers can switch whenever they like.
        var rotated = await (await admin.PostAsJsonAsync($"/api/v1/webhooks/{id}/rotate-secret", new { overlap = "24h" }, _ct)).JsonAsync();
        var second = rotated["secret"]!.GetValue<string>();
        Assert.NotEqual(first, second);
        (headers, body) = await DeliverAsync(admin);
        Assert.Equal(2, headers["webhook-signature"].Split(' ').Length);
        Assert.True(VerifiesWithDotNet(second, headers, body));
        Assert.True(MatchesAnySignature(first, headers, body));
        Assert.True(MatchesAnySignature(second, headers, body));
        if (await VerifiesWithNodeAsync(headers, body, first, second) is { } both)
        {
            Assert.Equal([true, true], both);
        }

        // After the overlap only the new one does. The clock moves a day; the verifiers compare the
        // timestamp with the real time, so only the signature set is checked here.
        _factory.Time.Advance(TimeSpan.FromHours(25));
        using var again = await _factory.AdminAsync();
        (headers, body) = await DeliverAsync(again);
        Assert.Single(headers["webhook-signature"].Split(' '));
        Assert.True(MatchesAnySignature(second, headers, body));
        Assert.False(MatchesAnySignature(first, headers, body));

        var audit = (await (await again.GetAsync($"/api/v1/audit?action=webhook.rotate_secret&target=webhook:{id}", _ct)).JsonAsync())["items"]!.AsArray();
        Assert.Single(audit);
        Assert.DoesNotContain(second, audit.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChosenSecrets_MustBeUsable()
    {
        using var admin = await _factory.AdminAsync();
        await (await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = _receiver.Url, events = new[] { "media.ready" }, secret = "whsec_not-base64!" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = _receiver.Url, events = new[] { "media.ready" }, secret = "has spaces in it, long enough" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        var hook = await (await admin.PostAsJsonAsync("/api/v1/webhooks", new { url = _receiver.Url, events = new[] { "media.ready" } }, _ct)).JsonAsync();
        await (await admin.PostAsJsonAsync($"/api/v1/webhooks/{hook["id"]!.GetValue<string>()}/rotate-secret", new { overlap = "30d" }, _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.PostAsJsonAsync("/api/v1/webhooks/no-such-hook/rotate-secret", new { }, _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
    }
}
