using Fundament.Messaging.Transport;
using Fundament.Messaging.Storage;

namespace Fundament.Messaging.Api;

/// <summary>
/// <c>/api/v1/topics/{topic}/subscriptions</c>: consumer groups. Every message published to the
/// topic after a group exists is delivered to one of the group's consumers, under a lease, by
/// long-poll pull; ack settles it, nack retries it after a backoff or dead-letters it.
/// </summary>
internal static class ConsumerGroupsApi
{
    public static RouteGroupBuilder MapConsumerGroupsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/topics/{topic}/subscriptions").WithTags("Messaging").RequireAuthorization(Policies.Authenticated).WithTransportProblems();
        group.MapPost("/", CreateAsync).WithName("CreateConsumerGroup")
            .WithSummary("Creates a consumer group on the topic (201), or returns the caller's existing one with the same settings (200); it receives what is published from now on.");
        group.MapGet("/", ListAsync).WithName("ListConsumerGroups")
            .WithSummary("The caller's consumer groups of the topic (every group for messaging.admin), a page at a time (limit 1-500, after: a group name), with their counts.");
        group.MapGet("/{group}", GetAsync).WithName("GetConsumerGroup").WithSummary("A consumer group with its ready, leased and dead-letter counts and the age of its oldest message.");
        group.MapDelete("/{group}", DeleteAsync).WithName("DeleteConsumerGroup").WithSummary("Removes a consumer group with everything it has not acknowledged, dead letters included.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/{group}/pull", PullAsync).WithName("PullMessages")
            .WithSummary("Leases up to max messages (wait: seconds to wait for some; lease: seconds before an unacknowledged message is handed out again). 409 for a push group or the platform's own.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/{group}/ack", AckAsync).WithName("AckMessages").WithSummary("Acknowledges leased messages: done for this group.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/{group}/nack", NackAsync).WithName("NackMessages")
            .WithSummary("Gives leased messages back: retried after the group's backoff (or retryAfterSeconds), dead-lettered at once (deadLetter: true) or when out of attempts, or released untried (release: true).")
            .ProducesProblem(StatusCodes.Status409Conflict);
        return group;
    }

    private static async Task<Results<Created<ConsumerGroup>, Ok<ConsumerGroup>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        string topic, ConsumerGroupRequest request, [AsParameters] MessagingAccess.Services s, HttpContext context, TimeProvider time,
        Fundament.Core.Egress.EgressGuard egress, Push.PushSecrets pushSecrets, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        var errors = new ValidationErrors();
        if (!MessagingAccess.IsTopic(topic))
        {
            errors.Add("topic", MessagingAccess.TopicRule);
        }
        if (!MessagingAccess.IsGroup(request.Group))
        {
            errors.Add("group", "group is 1-100 characters of letters, digits, '.', '_', ':' and '-', starting with a letter or digit.");
        }
        else if (DomainEventRelay.IsReservedName(request.Group!))
        {
            errors.Add("group", $"group names starting with '{DomainEventRelay.GroupPrefix}' are the platform's own.");
        }
        if (request.MaxAttempts is < 1 or > 100)
        {
            errors.Add("maxAttempts", "maxAttempts is 1-100.");
        }
        var backoff = request.Backoff ?? new Backoff(1, 300);
        var most = options.MaxRetryDelay.TotalSeconds;
        if (!(backoff.InitialSeconds >= 0 && backoff.InitialSeconds <= most && backoff.MaxSeconds >= backoff.InitialSeconds && backoff.MaxSeconds <= most)) // NaN fails too
        {
            errors.Add("backoff", $"backoff has initialSeconds 0-{most:0} and maxSeconds from initialSeconds to {most:0}.");
        }
        Uri? pushUrl = null;
        if (request.Push is { } push)
        {
            errors.Required("push.url", push.Url).MaxLength("push.url", push.Url, 2000);
            if (push.Url is not null && (!Uri.TryCreate(push.Url, UriKind.Absolute, out pushUrl) || pushUrl.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(pushUrl.UserInfo)))
            {
                errors.Add("push.url", "push.url must be an absolute http or https URL without credentials.");
                pushUrl = null;
            }
            if (push.Secret is not null && WebhookSignatures.Problem(push.Secret) is { } secretProblem)
            {
                errors.Add("push.secret", secretProblem + " Leave it out to have one generated.");
            }
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (await MessagingAccess.DeniedAsync(topic, TopicGrantStore.Consume, "messaging.group.create", s, context, cancellationToken) is { } denied)
        {
            return denied;
        }
        if (pushUrl is not null && egress.CheckTarget(Fundament.Core.Egress.EgressPurpose.Webhooks, pushUrl.Host, pushUrl.Port) is { Allowed: false } refused)
        {
            // Where the platform would connect is the webhook egress policy's to decide (cloud metadata, loopback, private ranges).
            await s.Audit.AppendAsync(new AuditEvent("messaging.group.create", AuditOutcome.Denied)
            {
                Target = $"consumer-group:{topic}/{request.Group}",
                Details = new Dictionary<string, string> { ["reason"] = "egress", ["host"] = $"{pushUrl.Host}:{pushUrl.Port}" },
            }.From(context), cancellationToken);
            return Problems.Validation("push.url", $"push.url is not allowed: {refused.Reason}.");
        }
        var actor = context.User.ActorId();
        var wanted = new GroupDefinition
        {
            Topic = topic,
            Name = request.Group!,
            MaxAttempts = request.MaxAttempts ?? 5,
            BackoffInitialMs = (long)(backoff.InitialSeconds * 1000),
            BackoffMaxMs = (long)(backoff.MaxSeconds * 1000),
            Ordered = request.Ordered == true ? 1 : 0,
            DeadLetter = request.DeadLetter == false ? 0 : 1,
            CreatedAt = time.GetUtcNow().ToUnixTimeMilliseconds(),
            CreatedBy = actor,
            PushUrl = pushUrl is null ? null : request.Push!.Url,
        };
        var pushSecret = pushUrl is null ? null : request.Push!.Secret ?? WebhookSignatures.NewSecret();
        if (pushSecret is not null)
        {
            wanted = wanted with { PushSecret = pushSecrets.Seal(topic, wanted.Name, pushSecret) };
        }
        if (s.Transport.Refuses(wanted) is { } refusal)
        {
            return Problems.Validation("ordered", refusal);
        }
        var (outcome, stored) = await s.Database.AuditedAsync(s.Audit, () => s.Store.CreateGroupAsync(wanted, options.MaxGroupsPerPrincipal, cancellationToken),
            r => r.Outcome == GroupCreation.Created ? new AuditEvent("messaging.group.create", AuditOutcome.Success)
            {
                Target = $"consumer-group:{topic}/{wanted.Name}",
                Details = PushDetails(wanted, new Dictionary<string, string> { ["ordered"] = wanted.IsOrdered ? "true" : "false", ["maxAttempts"] = wanted.MaxAttempts.ToString(System.Globalization.CultureInfo.InvariantCulture) }),
            }.From(context) : null, cancellationToken);
        switch (outcome)
        {
            case GroupCreation.OverLimit:
                return Problems.LimitExceeded("consumerGroups", options.MaxGroupsPerPrincipal,
                    $"A principal may create at most {options.MaxGroupsPerPrincipal} consumer groups; delete one first.", StatusCodes.Status429TooManyRequests);
            case GroupCreation.Exists when stored!.CreatedBy != actor || !stored.SameSettings(wanted):
                // Another principal's group, or the caller's with other settings: never handed over, never changed silently.
                return Problems.Conflict($"Consumer group '{wanted.Name}' of topic '{topic}' exists {(stored.CreatedBy != actor ? "and belongs to another principal" : "with other settings")}.");
            case GroupCreation.Exists when request.Push?.Secret is { } asked && !SameSecret(pushSecrets, stored!, asked):
                // The stored secret stays: a create that names another must not look as if it took it (the same one is a retry).
                return Problems.Conflict($"Push group '{wanted.Name}' of topic '{topic}' exists with another secret; a create does not change it.");
            case GroupCreation.Exists:
                // The transport again (idempotent): repairs a queue that went missing.
                await s.Transport.PrepareGroupAsync(stored!, CancellationToken.None);
                return TypedResults.Ok(await DescribeAsync(stored!, s, time, context.User.ActorId(), cancellationToken));
            default:
                try
                {
                    // Then the transport: the group is answered only once the queue that carries its messages exists.
                    await s.Transport.PrepareGroupAsync(stored!, CancellationToken.None);
                }
                catch (Exception)
                {
                    // Not created after all: the row goes (and a queue the broker may have made meanwhile), and the audit trail says so.
                    await s.Store.DeleteGroupAsync(topic, wanted.Name, CancellationToken.None);
                    await s.Transport.GroupDeletedAsync(stored!, CancellationToken.None);
                    await s.Audit.AppendAsync(new AuditEvent("messaging.group.delete", AuditOutcome.Success)
                    {
                        Target = $"consumer-group:{topic}/{wanted.Name}",
                        Details = new Dictionary<string, string> { ["reason"] = "the transport could not prepare the group" },
                    }.From(context), CancellationToken.None);
                    throw;
                }
                return TypedResults.Created($"/api/v1/topics/{topic}/subscriptions/{wanted.Name}", await DescribeAsync(stored!, s, time, context.User.ActorId(), cancellationToken) with { PushSecret = pushSecret });
        }
    }

    private static async Task<Results<Ok<IReadOnlyList<ConsumerGroup>>, ValidationProblem, ProblemHttpResult>> ListAsync(
        string topic, int? limit, string? after, [AsParameters] MessagingAccess.Services s, HttpContext context, TimeProvider time, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (!MessagingAccess.IsTopic(topic))
        {
            errors.Add("topic", MessagingAccess.TopicRule);
        }
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (await MessagingAccess.DeniedAsync(topic, TopicGrantStore.Consume, "messaging.group.list", s, context, cancellationToken) is { } denied)
        {
            return denied;
        }
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        var actor = context.User.ActorId();
        var page = await Paging.FillAsync(after, Paging.Take(size), (cursor, take) => s.Store.ListGroupsAsync(topic, cursor is null ? null : topic, cursor, take, cancellationToken),
            g => g.Name, g => access.IsAdministrator || g.CreatedBy == actor);
        var described = new List<ConsumerGroup>(page.Count);
        foreach (var g in page)
        {
            described.Add(await DescribeAsync(g, s, time, context.User.ActorId(), cancellationToken));
        }
        return TypedResults.Ok(Paging.Page(context, described, size, g => g.Group));
    }

    private static async Task<Results<Ok<ConsumerGroup>, ProblemHttpResult>> GetAsync(
        string topic, string group, [AsParameters] MessagingAccess.Services s, HttpContext context, TimeProvider time, CancellationToken cancellationToken)
    {
        var (definition, problem) = await MessagingAccess.GroupAsync(topic, group, "messaging.group.read", s, context, cancellationToken);
        return definition is null ? problem! : TypedResults.Ok(await DescribeAsync(definition, s, time, context.User.ActorId(), cancellationToken));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string topic, string group, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var (definition, problem) = await MessagingAccess.GroupAsync(topic, group, "messaging.group.delete", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        if (MessagingAccess.PlatformConsumed(definition) is { } platform)
        {
            return platform;
        }
        if (!await s.Database.AuditedAsync(s.Audit, () => s.Store.DeleteGroupAsync(topic, group, cancellationToken),
            deleted => deleted ? new AuditEvent("messaging.group.delete", AuditOutcome.Success) { Target = $"consumer-group:{topic}/{group}" }.From(context) : null, cancellationToken))
        {
            return Problems.NotFound("The consumer group");
        }
        await s.Transport.GroupDeletedAsync(definition, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<PullResult>, ValidationProblem, ProblemHttpResult>> PullAsync(
        string topic, string group, int? max, double? wait, double? lease, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        var errors = new ValidationErrors();
        if (max is < 1 or > 1000)
        {
            errors.Add("max", "max is 1-1000.");
        }
        if (lease is { } l && !(l >= 1 && l <= options.MaxLease.TotalSeconds))
        {
            errors.Add("lease", $"lease is 1-{options.MaxLease.TotalSeconds:0} seconds.");
        }
        if (wait is { } w && !(w >= 0 && w <= options.MaxPullWait.TotalSeconds))
        {
            errors.Add("wait", $"wait is 0-{options.MaxPullWait.TotalSeconds:0} seconds.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var (definition, problem) = await MessagingAccess.GroupAsync(topic, group, "messaging.group.pull", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        if ((MessagingAccess.PlatformConsumed(definition) ?? Pushed(definition)) is { } platform)
        {
            return platform;
        }
        var leaseFor = lease is { } seconds ? TimeSpan.FromSeconds(seconds) : options.DefaultLease;
        var deadline = Environment.TickCount64 + (long)((wait ?? 0) * 1000);
        while (true)
        {
            var pulled = await s.Transport.PullAsync(definition, max ?? 10, options.MaxPageBytes, leaseFor, waiting: deadline > Environment.TickCount64, cancellationToken);
            if (pulled.Expired > 0)
            {
                s.Metrics.Settled(topic, group, pulled.DeadLettering ? pulled.Expired : 0, pulled.DeadLettering ? 0 : pulled.Expired);
                if (pulled.Messages.Count == 0)
                {
                    // The scan met only leases that ran out on their last attempt (now settled): look again at once.
                    continue;
                }
            }
            var left = deadline - Environment.TickCount64;
            if (pulled.Messages.Count > 0 || left <= 0 || cancellationToken.IsCancellationRequested)
            {
                return TypedResults.Ok(new PullResult(pulled.Messages));
            }
            await s.Signal.WaitAsync(TimeSpan.FromMilliseconds(Math.Min(left, options.PullPollInterval.TotalMilliseconds)), cancellationToken);
        }
    }

    private static async Task<Results<Ok<SettleResult>, ValidationProblem, ProblemHttpResult>> AckAsync(
        string topic, string group, AckRequest request, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        if (LeaseIds(request.LeaseId, request.LeaseIds) is not { } leaseIds)
        {
            return LeaseIdsProblem();
        }
        var (definition, problem) = await MessagingAccess.GroupAsync(topic, group, "messaging.group.ack", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        if ((MessagingAccess.PlatformConsumed(definition) ?? Pushed(definition)) is { } platform)
        {
            return platform;
        }
        var stale = await s.Transport.AckAsync(definition, leaseIds, cancellationToken);
        return TypedResults.Ok(new SettleResult(leaseIds.Count - stale.Count, stale));
    }

    private static async Task<Results<Ok<SettleResult>, ValidationProblem, ProblemHttpResult>> NackAsync(
        string topic, string group, NackRequest request, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        if (LeaseIds(request.LeaseId, request.LeaseIds) is not { } leaseIds)
        {
            return LeaseIdsProblem();
        }
        var errors = new ValidationErrors().MaxLength("reason", request.Reason, 2000).MaxLength("exceptionType", request.ExceptionType, 200);
        if (MessagingAccess.HasControlCharacters(request.Reason, allowLineBreaks: true))
        {
            errors.Add("reason", "reason holds no control characters other than tabs and line breaks.");
        }
        if (MessagingAccess.HasControlCharacters(request.ExceptionType))
        {
            errors.Add("exceptionType", "exceptionType holds no control characters.");
        }
        if (request.RetryAfterSeconds is { } r && !(r >= 0 && r <= options.MaxRetryDelay.TotalSeconds))
        {
            errors.Add("retryAfterSeconds", $"retryAfterSeconds is 0-{options.MaxRetryDelay.TotalSeconds:0}.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var (definition, problem) = await MessagingAccess.GroupAsync(topic, group, "messaging.group.nack", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        if ((MessagingAccess.PlatformConsumed(definition) ?? Pushed(definition)) is { } platform)
        {
            return platform;
        }
        if (request.Release == true)
        {
            var unheld = await s.Transport.ReleaseAsync(definition, leaseIds, cancellationToken);
            s.Signal.Notify();
            return TypedResults.Ok(new SettleResult(leaseIds.Count - unheld.Count, unheld));
        }
        var outcome = await s.Transport.NackAsync(definition, leaseIds, request.Reason, request.ExceptionType, request.DeadLetter == true,
            request.RetryAfterSeconds is { } after ? TimeSpan.FromSeconds(after) : null, options.MaxRetryDelay, cancellationToken);
        s.Metrics.Settled(topic, group, outcome.DeadLettered, outcome.Dropped);
        s.Signal.Notify();
        return TypedResults.Ok(new SettleResult(leaseIds.Count - outcome.Stale.Count, outcome.Stale));
    }

    /// <summary>The lease ids of an ack or nack: <c>leaseId</c>, or 1-1000 in <c>leaseIds</c>; null when neither is valid.</summary>
    private static IReadOnlyList<string>? LeaseIds(string? one, IReadOnlyList<string>? many)
    {
        var all = one is null ? many : many is null ? [one] : null;
        return all is { Count: > 0 and <= 1000 } && all.All(id => id is { Length: > 0 and <= 64 } && !MessagingAccess.HasControlCharacters(id)) ? all.Distinct(StringComparer.Ordinal).ToList() : null;
    }

    private static ValidationProblem LeaseIdsProblem() => Problems.Validation("leaseIds", "Give leaseId, or 1-1000 lease ids in leaseIds (not both).");

    /// <summary>An audit entry's details, with a push group's target host (never its path or query, which may hold a token).</summary>
    private static Dictionary<string, string> PushDetails(GroupDefinition group, Dictionary<string, string> details)
    {
        if (group.PushUrl is { } url)
        {
            details["push"] = new Uri(url).Authority;
        }
        return details;
    }

    private static bool SameSecret(Push.PushSecrets secrets, GroupDefinition group, string asked) =>
        System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(secrets.Open(group)), System.Text.Encoding.UTF8.GetBytes(asked));

    /// <summary>The problem when a push group is pulled or settled by hand: the platform consumes it.</summary>
    private static ProblemHttpResult? Pushed(GroupDefinition group) =>
        group.IsPush ? Problems.Conflict($"Consumer group '{group.Name}' of topic '{group.Topic}' is a push group: its messages are POSTed to its URL, not pulled.") : null;

    /// <summary>
    /// A push URL as a viewer sees it: whole for the group's creator, without its query and fragment
    /// for anyone else (messaging.admin), since a receiver's token often travels there.
    /// </summary>
    private static string ShownPushUrl(GroupDefinition g, string? viewer) =>
        g.PushUrl is not { } url || viewer == g.CreatedBy || !Uri.TryCreate(url, UriKind.Absolute, out var parsed) || (parsed.Query.Length == 0 && parsed.Fragment.Length == 0)
            ? g.PushUrl ?? ""
            : parsed.GetLeftPart(UriPartial.Path) + "?…";

    private static async Task<ConsumerGroup> DescribeAsync(GroupDefinition g, MessagingAccess.Services s, TimeProvider time, string? viewer, CancellationToken cancellationToken)
    {
        var counts = (await s.Store.CountsAsync(g.Topic, g.Name, cancellationToken)).SingleOrDefault();
        var (ready, leased) = await s.Transport.HeldAsync(g, cancellationToken);
        return new ConsumerGroup(g.Topic, g.Name, g.MaxAttempts, new Backoff(g.BackoffInitialMs / 1000.0, g.BackoffMaxMs / 1000.0), g.IsOrdered, g.IsDeadLettering,
            (counts?.Ready ?? 0) + ready, (counts?.Leased ?? 0) + leased, counts?.Dead ?? 0,
            counts?.OldestPublishedAt is { } at ? Math.Max(0, (time.GetUtcNow() - at).TotalSeconds) : 0,
            DateTimeOffset.FromUnixTimeMilliseconds(g.CreatedAt), g.CreatedBy, g.IsPush ? new PushTarget(ShownPushUrl(g, viewer)) : null);
    }
}
