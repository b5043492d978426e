using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Fundament.Core.Egress;
using Fundament.Messaging.Storage;
using Fundament.Messaging.Transport;
using Microsoft.Extensions.Hosting;

namespace Fundament.Messaging.Push;

/// <summary>
/// Delivers push groups (control nodes): leases each group's due messages like a consumer would,
/// POSTs every one to the group's URL, signed the Standard Webhooks way, through the egress guard
/// (webhook policy, checked again at connect time), and settles it by the answer: 2xx acks;
/// anything else is a failed attempt, retried by the group's backoff (or the answer's
/// <c>Retry-After</c>) and dead-lettered after its attempts; 410 Gone and an egress refusal
/// dead-letter at once. Leases outlast the push timeout, so a node that dies mid-push leaves
/// messages that another node pushes again (at least once; <c>webhook-id</c> is the message id).
/// An ordered group's pull hands out one message per key at a time, so a key's pushes stay in order.
/// </summary>
internal sealed partial class PushDispatcher(
    MessageStore store, IMessageTransport transport, PushSecrets secrets, IHttpClientFactory clients, PublishSignal signal, MessagingMetrics metrics,
    IAuditLog audit, TimeProvider time, IOptions<MessagingOptions> options, ILogger<PushDispatcher> logger) : BackgroundService
{
    public const string ClientName = "fundament-messaging-push";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var pushed = 0;
            try
            {
                pushed = await PassAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(logger, ex);
            }
            if (pushed == 0)
            {
                await signal.WaitAsync(options.Value.Push.PollInterval, stoppingToken);
            }
        }
    }

    /// <summary>Pushes what is due in every push group once; returns how many messages were attempted.</summary>
    public async Task<int> PassAsync(CancellationToken cancellationToken)
    {
        var push = options.Value.Push;
        var attempted = 0;
        foreach (var group in await store.PushGroupsAsync(cancellationToken))
        {
            var pulled = await transport.PullAsync(group, push.Concurrency, options.Value.MaxPageBytes, push.Timeout + TimeSpan.FromSeconds(30), waiting: false, cancellationToken);
            if (pulled.Messages.Count == 0)
            {
                continue;
            }
            string secret;
            try
            {
                secret = secrets.Open(group);
            }
            catch (System.Security.Cryptography.CryptographicException ex)
            {
                // Nothing can be signed: give the leases back untried and say so (the master key is wrong or missing).
                LogSecretUnreadable(logger, group.Topic, group.Name, ex);
                await transport.ReleaseAsync(group, pulled.Messages.Select(m => m.LeaseId).ToList(), CancellationToken.None);
                continue;
            }
            var outcomes = new PushOutcome[pulled.Messages.Count];
            await Parallel.ForEachAsync(Enumerable.Range(0, pulled.Messages.Count), new ParallelOptions { MaxDegreeOfParallelism = push.Concurrency, CancellationToken = cancellationToken },
                async (i, ct) => outcomes[i] = await SendAsync(group, secret, pulled.Messages[i], ct));
            attempted += outcomes.Length;
            var acked = pulled.Messages.Where((_, i) => outcomes[i].Delivered).Select(m => m.LeaseId).ToList();
            if (acked.Count > 0)
            {
                await transport.AckAsync(group, acked, CancellationToken.None);
            }
            for (var i = 0; i < outcomes.Length; i++)
            {
                if (outcomes[i] is { Delivered: false } failed)
                {
                    var nack = await transport.NackAsync(group, [pulled.Messages[i].LeaseId], failed.Error, "PushFailed", failed.Permanent, failed.RetryAfter,
                        options.Value.MaxRetryDelay, CancellationToken.None);
                    metrics.Settled(group.Topic, group.Name, nack.DeadLettered, nack.Dropped);
                }
            }
            metrics.Pushed(group.Topic, acked.Count, outcomes.Length - acked.Count);
            signal.Notify();
        }
        return attempted;
    }

    private async Task<PushOutcome> SendAsync(GroupDefinition group, string secret, LeasedMessage message, CancellationToken cancellationToken)
    {
        var push = options.Value.Push;
        var body = JsonSerializer.Serialize(new PushedMessage(message.Id, message.Topic, group.Name, message.Sequence, message.Key, message.Body, message.Headers,
            message.PublishedAt, message.Attempt), JsonSerializerOptions.Web);
        var now = time.GetUtcNow();
        using var request = new HttpRequestMessage(HttpMethod.Post, group.PushUrl) { Content = new StringContent(body, Encoding.UTF8) };
        request.MarkSecretUrl();
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.UserAgent.ParseAdd("Fundament-Push/1");
        request.Headers.Add(WebhookSignatures.IdHeader, message.Id);
        request.Headers.Add(WebhookSignatures.TimestampHeader, now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
        request.Headers.Add(WebhookSignatures.SignatureHeader, WebhookSignatures.Signature([secret], message.Id, now, body));
        request.Headers.Add("Fundament-Topic", message.Topic);
        request.Headers.Add("Fundament-Group", group.Name);
        request.Headers.Add("Fundament-Attempt", message.Attempt.ToString(CultureInfo.InvariantCulture));
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var timeout = new CancellationTokenSource(push.Timeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            using var client = clients.CreateClient(ClientName);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            var code = (int)response.StatusCode;
            if (code is >= 200 and < 300)
            {
                return new PushOutcome(true, false, null, null);
            }
            TimeSpan? retryAfter = response.Headers.RetryAfter switch
            {
                { Delta: { } delta } => delta,
                { Date: { } date } => date - now,
                _ => null,
            };
            if (retryAfter is { } r)
            {
                retryAfter = r < TimeSpan.Zero ? TimeSpan.Zero : r > options.Value.MaxRetryDelay ? options.Value.MaxRetryDelay : r;
            }
            // 410 Gone: the receiver says this endpoint will never take it.
            return new PushOutcome(false, code == 410, $"HTTP {code} {response.ReasonPhrase} after {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms", retryAfter);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new PushOutcome(false, false, $"no answer within {push.Timeout.TotalSeconds:0}s", null);
        }
        catch (HttpRequestException ex) when (EgressDeniedException.IsDenial(ex, out var denial))
        {
            // Permanent: retrying cannot change the policy's answer (the guard counted and logged it).
            await audit.AppendAsync(new AuditEvent("messaging.push.egress_denied", AuditOutcome.Denied)
            {
                Actor = "system",
                Target = $"consumer-group:{group.Topic}/{group.Name}",
                Details = new Dictionary<string, string> { ["message"] = message.Id, ["reason"] = denial!.Message },
            }, CancellationToken.None);
            return new PushOutcome(false, true, denial.Message, null);
        }
        catch (HttpRequestException ex)
        {
            return new PushOutcome(false, false, $"connection failed: {ex.HttpRequestError}", null);
        }
    }

    private sealed record PushOutcome(bool Delivered, bool Permanent, string? Error, TimeSpan? RetryAfter);

    [LoggerMessage(Level = LogLevel.Error, Message = "A push pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "The push secret of consumer group {Group} of topic {Topic} cannot be decrypted; its messages wait")]
    private static partial void LogSecretUnreadable(ILogger logger, string topic, string group, Exception exception);
}
