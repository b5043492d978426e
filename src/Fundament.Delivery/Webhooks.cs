using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Fundament.Core.Egress;
using Fundament.Core.Keys;
using Microsoft.AspNetCore.Authorization;

namespace Fundament.Delivery;

/// <summary>
/// Webhook subscriptions (table <c>delivery_webhooks</c>): a URL, the events it wants and a signing
/// secret (envelope-encrypted). Webhooks are a consumer of the bus (<see cref="IDomainEventHandler"/>,
/// consumer group <c>fundament.webhooks</c> of every event's topic): each event becomes one durable
/// delivery per matching subscription on the delivery queue, which signs (Standard Webhooks), retries
/// and logs every attempt. A subscription receives its owner's events; an admin's subscription may
/// ask for everyone's.
/// </summary>
internal sealed class WebhookStore(IDatabase database, EnvelopeEncryption encryption, IDeliveryQueue queue, EventTypeCatalog eventTypes, TimeProvider time)
    : IDomainEventHandler, IEnvelopeHolder, Fundament.Core.Quotas.IQuotaMeter
{
    /// <summary>The envelope holder's name (re-wrap reports).</summary>
    public string Name => "webhook secrets";

    string IDomainEventHandler.Name => "webhooks";

    public string Quota => Fundament.Core.Quotas.Quota.WebhookSubscriptions;

    /// <summary>The principal's subscriptions (the webhookSubscriptions quota).</summary>
    public async Task<long> UsedAsync(string actor, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM delivery_webhooks WHERE owner = @actor", new { actor }, cancellationToken: cancellationToken));
    }

    private static byte[] Aad(string id) => Encoding.UTF8.GetBytes("fundament:webhook:secret:" + id);

    private static byte[] PreviousAad(string id) => Encoding.UTF8.GetBytes("fundament:webhook:previous-secret:" + id);

    public async Task<WebhookResponse> CreateAsync(string owner, bool allOwners, string url, IReadOnlyList<string> events, string secret, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7().ToString();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO delivery_webhooks (id, owner, all_owners, url, events, secret, created_at) VALUES (@id, @owner, @allOwners, @url, @events, @secret, @now)
            """, new { id, owner, allOwners, url, events = JsonSerializer.Serialize(events), secret = encryption.Encrypt(Encoding.UTF8.GetBytes(secret), Aad(id)), now }, cancellationToken: cancellationToken));
        return new WebhookResponse(id, url, events, allOwners, owner, DateTimeOffset.FromUnixTimeMilliseconds(now));
    }

    /// <summary>One page of subscriptions (<paramref name="owner"/>'s, or everyone's for null) by id, after <paramref name="after"/>; at most <paramref name="take"/>.</summary>
    public async Task<IReadOnlyList<WebhookResponse>> ListAsync(string? owner, string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<WebhookRow>(new CommandDefinition("""
            SELECT id AS Id, owner AS Owner, all_owners AS AllOwners, url AS Url, events AS Events, secret AS Secret, created_at AS CreatedAt FROM delivery_webhooks
            WHERE (@owner IS NULL OR owner = @owner) AND (@after IS NULL OR id > @after) ORDER BY id LIMIT @take
            """, new { owner, after, take }, cancellationToken: cancellationToken))).Select(r => r.ToResponse()).ToList();
    }

    public async Task<WebhookResponse?> GetAsync(string id, CancellationToken cancellationToken) =>
        (await ListRowsAsync("id = @id", new { id }, cancellationToken)).FirstOrDefault()?.ToResponse();

    /// <summary>The secrets deliveries of this subscription are signed with now: the current one, and the previous one while its overlap lasts. Null when the subscription is gone.</summary>
    public async Task<IReadOnlyList<string>?> SigningSecretsAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(byte[] Secret, byte[]? Previous, long? PreviousUntil)?>(new CommandDefinition(
            "SELECT secret, previous_secret, previous_until FROM delivery_webhooks WHERE id = @id", new { id }, cancellationToken: cancellationToken));
        if (row is not { } r)
        {
            return null;
        }
        var secrets = new List<string> { Encoding.UTF8.GetString(encryption.Decrypt(r.Secret, Aad(id))) };
        if (r.Previous is { } previous && r.PreviousUntil is { } until && until > time.GetUtcNow().ToUnixTimeMilliseconds())
        {
            secrets.Add(Encoding.UTF8.GetString(encryption.Decrypt(previous, PreviousAad(id))));
        }
        return secrets;
    }

    /// <summary>Replaces the secret; the old one stays valid (deliveries carry both signatures) until <paramref name="overlap"/> has passed.</summary>
    public async Task<DateTimeOffset?> RotateSecretAsync(string id, string secret, TimeSpan overlap, CancellationToken cancellationToken)
    {
        var until = time.GetUtcNow() + overlap;
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            var current = await connection.QuerySingleOrDefaultAsync<byte[]>(database.Command("SELECT secret FROM delivery_webhooks WHERE id = @id{for_update}", new { id }, transaction, cancellationToken: cancellationToken));
            if (current is null)
            {
                return (DateTimeOffset?)null;
            }
            var previous = overlap > TimeSpan.Zero ? encryption.Encrypt(encryption.Decrypt(current, Aad(id)), PreviousAad(id)) : null;
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE delivery_webhooks SET secret = @secret, previous_secret = @previous, previous_until = @until WHERE id = @id",
                new { id, secret = encryption.Encrypt(Encoding.UTF8.GetBytes(secret), Aad(id)), previous, until = previous is null ? (long?)null : until.ToUnixTimeMilliseconds() },
                transaction, cancellationToken: cancellationToken));
            return previous is null ? time.GetUtcNow() : until;
        }, cancellationToken);
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM delivery_webhooks WHERE id = @id", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>
    /// One delivery per subscription that wants the event. The delivery's id is derived from the
    /// event's and the subscription's, so an event the bus hands over again (at least once) is not
    /// delivered twice.
    /// </summary>
    public async Task HandleAsync(DomainEvent domainEvent, CancellationToken cancellationToken)
    {
        var subscribers = await ListRowsAsync("owner = @audience OR all_owners = TRUE", new { audience = domainEvent.Audience }, cancellationToken);
        foreach (var hook in subscribers)
        {
            var events = JsonSerializer.Deserialize<List<string>>(hook.Events) ?? [];
            // An event that needs a permission reaches only subscriptions that named it (and were checked for it then).
            var wanted = events.Contains(domainEvent.Name)
                || (events.Contains(EventTypeCatalog.Wildcard) && eventTypes.Definitions.FirstOrDefault(d => d.Name == domainEvent.Name)?.Permission is null);
            if (!wanted)
            {
                continue;
            }
            var payload = JsonSerializer.Serialize(new { @event = domainEvent.Name, webhook = hook.Id, at = domainEvent.At, data = domainEvent.Data }, JsonSerializerOptions.Web);
            var secret = Encoding.UTF8.GetString(encryption.Decrypt(hook.Secret, Aad(hook.Id)));
            await queue.EnqueueAsync(new DeliveryRequest(DeliveryKind.Webhook, hook.Url, domainEvent.Name, payload, Secret: secret, Source: $"webhook:{hook.Id}")
            {
                Id = DeliveryId(domainEvent.Id, hook.Id),
            }, cancellationToken);
        }
    }

    /// <summary>A UUID named by the event and the subscription (SHA-256 of both, version 8 bits set).</summary>
    internal static string DeliveryId(string eventId, string webhookId)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(eventId + "\n" + webhookId));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
    }

    public async Task<RewrapResult> RewrapAsync(EnvelopeEncryption current, CancellationToken cancellationToken)
    {
        var secrets = await EnvelopeColumn.RewrapAsync(database, current, "delivery_webhooks", ["id"], "secret", "1 = 1", cancellationToken);
        var previous = await EnvelopeColumn.RewrapAsync(database, current, "delivery_webhooks", ["id"], "previous_secret", "previous_secret IS NOT NULL", cancellationToken);
        return secrets.Plus(previous);
    }

    private async Task<IReadOnlyList<WebhookRow>> ListRowsAsync(string where, object args, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<WebhookRow>(new CommandDefinition(
            $"SELECT id AS Id, owner AS Owner, all_owners AS AllOwners, url AS Url, events AS Events, secret AS Secret, created_at AS CreatedAt FROM delivery_webhooks WHERE {where}",
            args, cancellationToken: cancellationToken))).ToList();
    }

    private sealed class WebhookRow
    {
        public string Id { get; set; } = "";
        public string Owner { get; set; } = "";
        public bool AllOwners { get; set; }
        public string Url { get; set; } = "";
        public string Events { get; set; } = "[]";
        public byte[] Secret { get; set; } = [];
        public long CreatedAt { get; set; }

        public WebhookResponse ToResponse() => new(Id, Url, JsonSerializer.Deserialize<List<string>>(Events) ?? [], AllOwners, Owner, DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt));
    }
}

public sealed record WebhookRequest(string? Url, IReadOnlyList<string>? Events, string? Secret, bool? AllOwners);

public sealed record WebhookResponse(string Id, string Url, IReadOnlyList<string> Events, bool AllOwners, string Owner, DateTimeOffset CreatedAt);

/// <summary>Body of <c>POST /api/v1/webhooks/{id}/rotate-secret</c>; both fields optional.</summary>
/// <param name="Overlap">How long the old secret stays valid beside the new one, e.g. <c>24h</c> (default), <c>0s</c> to drop it at once; at most 7d.</param>
/// <param name="Secret">The new secret, <c>whsec_&lt;base64&gt;</c>; generated when left out.</param>
public sealed record WebhookRotateRequest(string? Overlap, string? Secret);

/// <summary>The answer to a rotation: the new secret, shown this once, and until when the old one still signs.</summary>
public sealed record WebhookSecretRotated(string Id, string Secret, DateTimeOffset PreviousValidUntil);

/// <summary>The answer to a create: the secret is shown this once.</summary>
public sealed record WebhookCreated(string Id, string Url, IReadOnlyList<string> Events, bool AllOwners, string Secret);

internal static class WebhooksApi
{
    public static RouteGroupBuilder MapWebhooksApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/webhooks").WithTags("Webhooks").RequireAuthorization(DeliveryPermissions.WebhooksOwn);
        group.MapGet("", ListAsync).WithName("ListWebhooks")
            .WithSummary("The caller's webhook subscriptions (all of them for deliveries.manage) by id, a page at a time: limit (1-500, default 100) and after (the cursor in the Link rel=next header).");
        group.MapPost("", CreateAsync).WithName("CreateWebhook").WithSummary("Subscribes a URL to events (e.g. media.ready); deliveries are signed with the secret (generated when not given, shown once).");
        group.MapGet("/{id}", GetAsync).WithName("GetWebhook").WithSummary("Get a webhook subscription");
        group.MapDelete("/{id}", DeleteAsync).WithName("DeleteWebhook").WithSummary("Delete a webhook subscription");
        group.MapGet("/{id}/deliveries", DeliveriesAsync).WithName("ListWebhookDeliveries")
            .WithSummary("The delivery log of one subscription, newest first: the latest limit (1-500, default 100) deliveries.");
        group.MapPost("/{id}/rotate-secret", RotateSecretAsync).WithName("RotateWebhookSecret")
            .WithSummary("Replaces the signing secret (shown once); deliveries carry signatures with both secrets until the overlap (default 24h) ends.");
        return group;
    }

    private static async Task<bool> IsManagerAsync(HttpContext context, IAuthorizationService authorization) =>
        (await authorization.AuthorizeAsync(context.User, DeliveryPermissions.Manage)).Succeeded;

    private static async Task<Results<Ok<IReadOnlyList<WebhookResponse>>, ValidationProblem>> ListAsync(
        int? limit, string? after, HttpContext context, WebhookStore store, IAuthorizationService authorization, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var owner = await IsManagerAsync(context, authorization) ? null : context.User.ActorId();
        return TypedResults.Ok(Paging.Page(context, await store.ListAsync(owner, after, Paging.Take(size), cancellationToken), size, w => w.Id));
    }

    private static async Task<Results<Created<WebhookCreated>, ValidationProblem>> CreateAsync(
        WebhookRequest request, HttpContext context, IDatabase database, WebhookStore store, IAuthorizationService authorization, EgressGuard egress, IAuditLog audit,
        Fundament.Core.Quotas.IQuotas quotas, EventTypeCatalog eventTypes, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors().Required("url", request.Url).MaxLength("url", request.Url, 2000);
        Uri? url = null;
        if (request.Url is not null && (!Uri.TryCreate(request.Url, UriKind.Absolute, out url) || url.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(url.UserInfo)))
        {
            errors.Add("url", "url must be an absolute http or https URL without credentials.");
        }
        else if (url is not null && egress.CheckTarget(EgressPurpose.Webhooks, url.Host, url.Port) is { Allowed: false } refused)
        {
            errors.Add("url", $"url is not allowed: {refused.Reason}.");
            await audit.AppendAsync(new AuditEvent("webhook.create", AuditOutcome.Denied)
            {
                Details = new Dictionary<string, string> { ["reason"] = "egress", ["host"] = $"{url.Host}:{url.Port}" },
            }.From(context), cancellationToken);
        }
        if (request.Events is not { Count: > 0 and <= 50 })
        {
            errors.Add("events", "events lists 1-50 event names.");
        }
        else if (request.Events.FirstOrDefault(e => !eventTypes.IsKnown(e)) is { } unknown)
        {
            errors.Add("events", $"unknown event '{unknown}'; known: {string.Join(", ", eventTypes.Names)}.");
        }
        else
        {
            foreach (var guarded in eventTypes.Definitions.Where(d => d.Permission is not null && request.Events.Contains(d.Name)))
            {
                if (!(await authorization.AuthorizeAsync(context.User, guarded.Permission!)).Succeeded)
                {
                    errors.Add("events", $"subscribing to '{guarded.Name}' needs the permission {guarded.Permission}.");
                    break;
                }
            }
        }
        if (request.Secret is not null && WebhookSignatures.Problem(request.Secret) is { } secretProblem)
        {
            errors.Add("secret", secretProblem + " Leave it out to have one generated.");
        }
        var manager = await IsManagerAsync(context, authorization);
        if (request.AllOwners == true && !manager)
        {
            errors.Add("allOwners", "Only deliveries.manage may subscribe to everyone's events.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var secret = request.Secret ?? WebhookSignatures.NewSecret();
        var owner = context.User.ActorId() ?? "anonymous";
        var created = await database.AuditedAsync(audit,
            async () =>
            {
                await quotas.EnsureAsync(Fundament.Core.Quotas.QuotaSubject.Of(context.User), Fundament.Core.Quotas.Quota.WebhookSubscriptions, 1, cancellationToken);
                return await store.CreateAsync(owner, request.AllOwners == true, request.Url!, request.Events!.Distinct(StringComparer.Ordinal).ToList(), secret, cancellationToken);
            },
            created => new AuditEvent("webhook.create", AuditOutcome.Success) { Target = $"webhook:{created.Id}", Details = new Dictionary<string, string> { ["host"] = new Uri(created.Url).Authority } }.From(context),
            cancellationToken);
        return TypedResults.Created($"/api/v1/webhooks/{created.Id}", new WebhookCreated(created.Id, created.Url, created.Events, created.AllOwners, secret));
    }

    private static async Task<WebhookResponse?> VisibleAsync(string id, HttpContext context, WebhookStore store, IAuthorizationService authorization, CancellationToken cancellationToken) =>
        await store.GetAsync(id, cancellationToken) is { } hook && (hook.Owner == context.User.ActorId() || await IsManagerAsync(context, authorization)) ? hook : null;

    private static async Task<Results<Ok<WebhookResponse>, ProblemHttpResult>> GetAsync(string id, HttpContext context, WebhookStore store, IAuthorizationService authorization, CancellationToken cancellationToken) =>
        await VisibleAsync(id, context, store, authorization, cancellationToken) is { } hook ? TypedResults.Ok(hook) : Problems.NotFound("The webhook");

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string id, HttpContext context, IDatabase database, WebhookStore store, IAuthorizationService authorization, IAuditLog audit, CancellationToken cancellationToken)
    {
        if (await VisibleAsync(id, context, store, authorization, cancellationToken) is null)
        {
            return Problems.NotFound("The webhook");
        }
        await database.AuditedAsync(audit, () => store.DeleteAsync(id, cancellationToken),
            deleted => deleted ? new AuditEvent("webhook.delete", AuditOutcome.Success) { Target = $"webhook:{id}" }.From(context) : null, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<WebhookSecretRotated>, ValidationProblem, ProblemHttpResult>> RotateSecretAsync(
        string id, WebhookRotateRequest? request, HttpContext context, IDatabase database, WebhookStore store, IAuthorizationService authorization, IAuditLog audit,
        CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var overlap = TimeSpan.FromHours(24);
        if (request?.Overlap is { } text && (!Fundament.Core.Hosting.Durations.TryParse(text, out overlap) || overlap > TimeSpan.FromDays(7)))
        {
            errors.Add("overlap", "overlap must be a duration from 0s to 7d.");
        }
        if (request?.Secret is { } chosen && WebhookSignatures.Problem(chosen) is { } secretProblem)
        {
            errors.Add("secret", secretProblem);
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (await VisibleAsync(id, context, store, authorization, cancellationToken) is null)
        {
            return Problems.NotFound("The webhook");
        }
        var secret = request?.Secret ?? WebhookSignatures.NewSecret();
        var until = await database.AuditedAsync(audit, () => store.RotateSecretAsync(id, secret, overlap, cancellationToken),
            until => until is null ? null : new AuditEvent("webhook.rotate_secret", AuditOutcome.Success)
            {
                Target = $"webhook:{id}",
                Details = new Dictionary<string, string> { ["overlap"] = Fundament.Core.Hosting.Durations.Format(overlap) },
            }.From(context), cancellationToken);
        return until is { } previousValidUntil
            ? TypedResults.Ok(new WebhookSecretRotated(id, secret, previousValidUntil))
            : Problems.NotFound("The webhook");
    }

    private static async Task<Results<Ok<IReadOnlyList<DeliveryResponse>>, ValidationProblem, ProblemHttpResult>> DeliveriesAsync(
        string id, int? limit, HttpContext context, WebhookStore store, DeliveryStore deliveries, IAuthorizationService authorization, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, null);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (await VisibleAsync(id, context, store, authorization, cancellationToken) is null)
        {
            return Problems.NotFound("The webhook");
        }
        return TypedResults.Ok(await deliveries.ListAsync(null, $"webhook:{id}", size, cancellationToken));
    }
}
