using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Fundament.Core.Egress;
using Fundament.Core.Notifications;

namespace Fundament.Delivery;

/// <summary>
/// Sends one delivery. Webhooks are signed the Standard Webhooks way (<see cref="WebhookSignatures"/>:
/// <c>webhook-id</c>, the same on every retry, for deduplication; <c>webhook-timestamp</c>;
/// <c>webhook-signature</c>, one signature per secret valid now, so a rotation overlaps) and also
/// carry <c>X-Fundament-Event</c>, <c>X-Fundament-Delivery</c> and the older body-only
/// <c>X-Fundament-Signature: sha256=&lt;hex HMAC-SHA256 of the body&gt;</c> (kept for receivers that
/// have not moved yet; it covers neither the time nor the id, so it cannot stop a replay).
/// </summary>
internal sealed class DeliverySender(
    IHttpClientFactory clients, INotificationSender mail, WebhookStore webhooks, TimeProvider time, IOptions<DeliveryOptions> options, IAuditLog audit)
{
    /// <summary>Webhook subscriptions: egress purpose <see cref="EgressPurpose.Webhooks"/>.</summary>
    public const string WebhookClientName = "fundament-delivery-webhooks";

    /// <summary>Alert channels: egress purpose <see cref="EgressPurpose.AlertChannels"/>. A separate pool, so a connection one policy allowed is never reused under the other.</summary>
    public const string AlertClientName = "fundament-delivery-alerts";

    /// <summary>Which egress policy a delivery falls under: webhook subscriptions, or everything else (alert channels).</summary>
    public static EgressPurpose PurposeOf(string? source) =>
        source?.StartsWith("webhook:", StringComparison.Ordinal) == true ? EgressPurpose.Webhooks : EgressPurpose.AlertChannels;

    /// <summary>The older body-only signature, keyed with the secret's UTF-8 bytes as before.</summary>
    public static string Sign(string secret, byte[] body) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    public async Task<AttemptResult> SendAsync(DeliveryItem item, string? secret, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            if (item.Kind == DeliveryKind.Email)
            {
                await mail.SendAsync(new NotificationMessage(item.Target, item.Subject ?? item.Event, item.Payload), cancellationToken);
                return new AttemptResult(true, false, null, null, Stopwatch.GetElapsedTime(started));
            }
            var body = item.Kind == DeliveryKind.Slack
                ? JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["text"] = item.Payload })
                : Encoding.UTF8.GetBytes(item.Payload);
            using var request = new HttpRequestMessage(HttpMethod.Post, item.Target) { Content = new ByteArrayContent(body) };
            request.MarkSecretUrl();
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
            request.Headers.UserAgent.ParseAdd("Fundament-Delivery/1");
            if (item.Kind == DeliveryKind.Webhook)
            {
                var now = time.GetUtcNow();
                var timestamp = now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
                request.Headers.Add("X-Fundament-Event", item.Event);
                request.Headers.Add("X-Fundament-Delivery", item.Id);
                request.Headers.Add("X-Fundament-Timestamp", timestamp);
                request.Headers.Add(WebhookSignatures.IdHeader, item.Id);
                request.Headers.Add(WebhookSignatures.TimestampHeader, timestamp);
                // A subscription's secrets as they are now (a rotation may have happened since this was queued).
                var secrets = (item.Source?.StartsWith("webhook:", StringComparison.Ordinal) == true
                    ? await webhooks.SigningSecretsAsync(item.Source["webhook:".Length..], cancellationToken)
                    : null) ?? (secret is null ? [] : [secret]);
                if (secrets.Count > 0)
                {
                    request.Headers.Add(WebhookSignatures.SignatureHeader, WebhookSignatures.Signature(secrets, item.Id, now, item.Payload));
                    request.Headers.Add("X-Fundament-Signature", Sign(secrets[0], body));
                }
            }
            using var timeout = new CancellationTokenSource(options.Value.Timeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            using var client = clients.CreateClient(PurposeOf(item.Source) == EgressPurpose.Webhooks ? WebhookClientName : AlertClientName);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            var code = (int)response.StatusCode;
            var success = code is >= 200 and < 300;
            // 410 Gone: the receiver says this endpoint will never take it.
            return new AttemptResult(success, code == 410, code, success ? null : $"HTTP {code} {response.ReasonPhrase}", Stopwatch.GetElapsedTime(started));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new AttemptResult(false, false, null, $"no answer within {options.Value.Timeout.TotalSeconds:0}s", Stopwatch.GetElapsedTime(started));
        }
        catch (HttpRequestException ex) when (EgressDeniedException.IsDenial(ex, out var denial))
        {
            // Permanent: retrying cannot change the policy's answer. The refusal was counted and logged by the guard.
            await audit.AppendAsync(new AuditEvent("delivery.egress_denied", AuditOutcome.Denied)
            {
                Actor = "system",
                Target = item.Source ?? $"delivery:{item.Id}",
                Details = new Dictionary<string, string> { ["delivery"] = item.Id, ["reason"] = denial!.Message },
            }, CancellationToken.None);
            return new AttemptResult(false, true, null, denial.Message, Stopwatch.GetElapsedTime(started));
        }
        catch (HttpRequestException ex)
        {
            return new AttemptResult(false, false, null, $"connection failed: {ex.HttpRequestError}", Stopwatch.GetElapsedTime(started));
        }
        catch (Exception ex) when (ex is MailKit.CommandException or MailKit.ProtocolException or System.Net.Sockets.SocketException or IOException)
        {
            return new AttemptResult(false, false, null, $"mail failed: {ex.GetType().Name}", Stopwatch.GetElapsedTime(started));
        }
    }
}
