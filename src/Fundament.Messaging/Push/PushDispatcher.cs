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
/// (webhook policy, checked again at connect time), and settles it by the answer as soon as it
/// comes: 2xx acks; anything else is a failed attempt, retried by the group's backoff (or the
/// answer's <c>Retry-After</c>) and dead-lettered after its attempts; 410 Gone and an egress refusal
/// dead-letter at once. Leases outlast the push timeout, so a node that dies mid-push leaves
/// messages that another node pushes again (at least once; <c>webhook-id</c> is the message id).
/// An ordered group's pull hands out one message per key at a time, so a key's pushes stay in order.
/// Every group has its own worker: a receiver that never answers holds up its own group only, and
/// a group that fails (its queue, the database) does not stop the others.
/// </summary>
internal sealed partial class PushDispatcher(
    MessageStore store, IMessageTransport transport, PushSecrets secrets, IHttpClientFactory clients, PublishSignal signal, MessagingMetrics metrics,
    IAuditLog audit, TimeProvider time, IOptions<MessagingOptions> options, ILogger<PushDispatcher> logger) : BackgroundService
{
    public const string ClientName = "fundament-messaging-push";

    /// <summary>Each push group's latest worker on this node: a pass starts none for a group whose worker still runs.</summary>
    private readonly Dictionary<(string Topic, string Name), Task<int>> _running = [];

    /// <summary>Sends in flight on this node, all groups together.</summary>
    private readonly SemaphoreSlim _inFlight = new(options.Value.Push.MaxInFlight);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // Starts a worker for every push group without one and goes on: no group waits for another.
                await StartWorkersAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(logger, ex);
            }
            await signal.WaitAsync(options.Value.Push.PollInterval, stoppingToken);
        }
        Task[] workers;
        lock (_running)
        {
            workers = [.. _running.Values];
        }
        await Task.WhenAll(workers).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>Pushes what is due in every push group once and waits for it; returns how many messages were attempted.</summary>
    public async Task<int> PassAsync(CancellationToken cancellationToken) => (await Task.WhenAll(await StartWorkersAsync(cancellationToken))).Sum();

    private async Task<IReadOnlyList<Task<int>>> StartWorkersAsync(CancellationToken cancellationToken)
    {
        var started = new List<Task<int>>();
        var groups = await store.PushGroupsAsync(cancellationToken);
        lock (_running)
        {
            // Groups deleted since: their finished workers go.
            var current = groups.Select(g => (g.Topic, g.Name)).ToHashSet();
            foreach (var gone in _running.Where(r => r.Value.IsCompleted && !current.Contains(r.Key)).Select(r => r.Key).ToList())
            {
                _running.Remove(gone);
            }
        }
        foreach (var group in groups)
        {
            var key = (group.Topic, group.Name);
            lock (_running)
            {
                if (_running.TryGetValue(key, out var running) && !running.IsCompleted)
                {
                    continue;
                }
                var worker = Task.Run(() => WorkAsync(group, cancellationToken), CancellationToken.None);
                _running[key] = worker;
                started.Add(worker);
            }
        }
        return started;
    }

    /// <summary>One group: lease what is due, send each, settle each as its answer comes. Never throws.</summary>
    private async Task<int> WorkAsync(GroupDefinition group, CancellationToken cancellationToken)
    {
        var push = options.Value.Push;
        try
        {
            var pulled = await transport.PullAsync(group, push.Concurrency, options.Value.MaxPageBytes, push.Timeout + TimeSpan.FromSeconds(30), waiting: false, cancellationToken);
            if (pulled.Messages.Count == 0)
            {
                return 0;
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
                return 0;
            }
            await Task.WhenAll(pulled.Messages.Select(message => SendAndSettleAsync(group, secret, message, cancellationToken)));
            signal.Notify();
            return pulled.Messages.Count;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // This group only: its leases run out and the next pass tries again.
            LogGroupFailed(logger, group.Topic, group.Name, ex);
            return 0;
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }

    private async Task SendAndSettleAsync(GroupDefinition group, string secret, LeasedMessage message, CancellationToken cancellationToken)
    {
        PushOutcome outcome;
        await _inFlight.WaitAsync(cancellationToken);
        try
        {
            outcome = await SendAsync(group, secret, message, cancellationToken);
        }
        finally
        {
            _inFlight.Release();
        }
        // Settled at once, whatever happens to the rest of the batch (and not cancelled by a shutdown: the answer came).
        if (outcome.Delivered)
        {
            await transport.AckAsync(group, [message.LeaseId], CancellationToken.None);
            metrics.Pushed(group.Topic, 1, 0);
            return;
        }
        var nack = await transport.NackAsync(group, [message.LeaseId], outcome.Error, "PushFailed", outcome.Permanent, outcome.RetryAfter,
            options.Value.MaxRetryDelay, CancellationToken.None);
        metrics.Settled(group.Topic, group.Name, nack.DeadLettered, nack.Dropped);
        metrics.Pushed(group.Topic, 0, 1);
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
            try
            {
                await audit.AppendAsync(new AuditEvent("messaging.push.egress_denied", AuditOutcome.Denied)
                {
                    Actor = "system",
                    Target = $"consumer-group:{group.Topic}/{group.Name}",
                    Details = new Dictionary<string, string> { ["message"] = message.Id, ["reason"] = denial!.Message },
                }, CancellationToken.None);
            }
            catch (Exception auditFailure)
            {
                LogAuditFailed(logger, group.Topic, group.Name, auditFailure);
            }
            return new PushOutcome(false, true, denial!.Message, null);
        }
        catch (HttpRequestException ex)
        {
            return new PushOutcome(false, false, $"connection failed: {ex.HttpRequestError}", null);
        }
    }

    private sealed record PushOutcome(bool Delivered, bool Permanent, string? Error, TimeSpan? RetryAfter);

    [LoggerMessage(Level = LogLevel.Error, Message = "A push pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Pushing consumer group {Group} of topic {Topic} failed; its leases run out and the next pass tries again")]
    private static partial void LogGroupFailed(ILogger logger, string topic, string group, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "The push secret of consumer group {Group} of topic {Topic} cannot be decrypted; its messages wait")]
    private static partial void LogSecretUnreadable(ILogger logger, string topic, string group, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "The audit entry of a refused push of consumer group {Group} of topic {Topic} could not be written")]
    private static partial void LogAuditFailed(ILogger logger, string topic, string group, Exception exception);
}
