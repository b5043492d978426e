using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using Fundament.Events.Storage;

namespace Fundament.Events.Api;

/// <summary>
/// <c>/api/v1/subscriptions</c>: named, durable subscriptions over <c>$all</c>, consumed by pull
/// (long-poll) or Server-Sent Events, with leases, ack, nack, parking and replay. A subscription
/// belongs to the principal that created it (events.admin manages all), and every call needs read
/// on every stream its filter covers, checked each time (a revoked grant stops consumption at once).
/// </summary>
internal static partial class SubscriptionsApi
{
    public static RouteGroupBuilder MapSubscriptionsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/subscriptions").WithTags("Event store").RequireAuthorization(Policies.Authenticated);
        group.MapPost("/", CreateAsync).WithName("CreateSubscription")
            .WithSummary("Creates a durable subscription over $all, filtered by stream prefix and type, from the start, the end or a position; catchup (in order) or competing.");
        group.MapGet("/", ListAsync).WithName("ListSubscriptions")
            .WithSummary("The subscriptions the caller may read, by name, a page at a time (limit 1-500, after: the cursor in the Link rel=next header), each with its checkpoint and lag.");
        group.MapGet("/{name}", GetAsync).WithName("GetSubscription").WithSummary("A subscription with its checkpoint, lag and leased, retrying and parked counts.");
        group.MapDelete("/{name}", DeleteAsync).WithName("DeleteSubscription").WithSummary("Removes a subscription with its checkpoint and parked events.");
        group.MapPost("/{name}/pull", PullAsync).WithName("PullSubscription")
            .WithSummary("Leases up to max events (wait: seconds to wait for some; lease: seconds before an unacknowledged event is handed out again).");
        group.MapGet("/{name}/stream", StreamAsync).WithName("StreamSubscription")
            .WithSummary("The subscription's events as Server-Sent Events (event: event, id: position, data: a leased event); acknowledge them with ack.");
        group.MapPost("/{name}/ack", AckAsync).WithName("AckSubscription").WithSummary("Acknowledges leased events: they are done.");
        group.MapPost("/{name}/nack", NackAsync).WithName("NackSubscription")
            .WithSummary("Gives leased events back: retried after a backoff, or parked at once (park: true) or after maxAttempts.");
        group.MapGet("/{name}/parked", ParkedAsync).WithName("ListParkedEvents")
            .WithSummary("Parked events in position order, with attempts, reason and first and last failure (after: a position, limit 1-500).");
        group.MapPost("/{name}/parked/replay", ReplayAsync).WithName("ReplayParkedEvents")
            .WithSummary("Hands parked events (the listed positions, or all) out again with fresh attempts; events not parked right now are left alone.");
        return group;
    }

    internal sealed record Services(SubscriptionStore Store, StreamGrantStore Grants, AppendSignal Signal, IDatabase Database, IAuditLog Audit,
        Upcasting.EventUpcaster Upcaster, IOptions<EventsOptions> Options)
    {
        /// <summary>Leases up to <paramref name="max"/> events, upcast to their types' current shape.</summary>
        public async Task<IReadOnlyList<LeasedEvent>> PullAsync(SubscriptionDefinition checkedOne, int max, TimeSpan lease, CancellationToken cancellationToken) =>
            await Upcaster.ApplyAsync(await Store.PullAsync(checkedOne.Name, max, lease, Options.Value.MaxInFlightPerSubscription, cancellationToken, checkedOne.CreatedAt),
                l => l.Event, (l, e) => l with { Event = e }, cancellationToken);
    }

    private static async Task<Results<Created<Subscription>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        SubscriptionRequest request, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (request.Name is not { } name || !IsName(name))
        {
            errors.Add("name", "name is 1-100 characters of letters, digits, '.', '_', ':' and '-', starting with a letter or digit.");
        }
        var prefix = request.Filter?.StreamPrefix;
        if (prefix is not null && !StreamsApi.IsStreamPrefix(prefix))
        {
            errors.Add("filter.streamPrefix", "streamPrefix is 1-200 characters of letters, digits, '.', '_', ':' and '-'.");
        }
        var type = request.Filter?.Type;
        if (type is not null && !StreamsApi.IsStreamPrefix(type))
        {
            errors.Add("filter.type", "type is 1-200 characters of letters, digits, '.', '_', ':' and '-'.");
        }
        var mode = request.Mode ?? SubscriptionStore.CatchUp;
        if (!SubscriptionStore.Modes.Contains(mode))
        {
            errors.Add("mode", "mode is catchup or competing.");
        }
        if (request.MaxAttempts is < 1 or > 100)
        {
            errors.Add("maxAttempts", "maxAttempts is 1-100.");
        }
        string? from = "end";
        long? fromPosition = null;
        switch (request.From)
        {
            case null or { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined }:
                break;
            case { ValueKind: JsonValueKind.String } text when text.GetString() is "start" or "end":
                from = text.GetString();
                break;
            case { ValueKind: JsonValueKind.Number } number when number.TryGetInt64(out var p) && p >= 0:
                (from, fromPosition) = (null, p);
                break;
            default:
                errors.Add("from", "from is \"start\", \"end\" or a position (0 or more).");
                break;
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (await DeniedAsync(prefix, "events.subscription.create", request.Name!, s, context, cancellationToken) is { } denied)
        {
            return denied;
        }
        var actor = context.User.ActorId();
        var limit = s.Options.Value.MaxSubscriptionsPerPrincipal;
        var definition = new SubscriptionDefinition { Name = request.Name!, StreamPrefix = prefix, EventType = type, Mode = mode, MaxAttempts = request.MaxAttempts ?? 5 };
        var created = await s.Database.AuditedAsync(s.Audit, () => s.Store.CreateAsync(definition, from, fromPosition, actor, limit, cancellationToken),
            outcome => outcome == SubscriptionCreation.Created ? new AuditEvent("events.subscription.create", AuditOutcome.Success)
            {
                Target = $"subscription:{definition.Name}",
                Details = new Dictionary<string, string> { ["streamPrefix"] = prefix ?? "", ["type"] = type ?? "", ["mode"] = mode },
            }.From(context) : null, cancellationToken);
        if (created == SubscriptionCreation.OverLimit)
        {
            return Problems.LimitExceeded("subscriptions", limit, $"A principal may create at most {limit} subscriptions; delete one first.", StatusCodes.Status429TooManyRequests);
        }
        if (created == SubscriptionCreation.NameTaken)
        {
            return Problems.Conflict($"A subscription named '{definition.Name}' exists.");
        }
        return TypedResults.Created($"/api/v1/subscriptions/{definition.Name}", await DescribeAsync((await s.Store.FindAsync(definition.Name, cancellationToken))!, s.Store, cancellationToken));
    }

    private static async Task<Results<Ok<IReadOnlyList<Subscription>>, ValidationProblem>> ListAsync(
        int? limit, string? after, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        var actor = context.User.ActorId();
        var page = await Paging.FillAsync(after, Paging.Take(size), (cursor, take) => s.Store.ListAsync(cursor, take, cancellationToken),
            d => d.Name, d => (access.IsAdministrator || d.CreatedBy == actor) && access.AllowsEvery(StreamGrantStore.Read, d.StreamPrefix ?? ""));
        var described = new List<Subscription>(page.Count);
        foreach (var definition in page)
        {
            described.Add(await DescribeAsync(definition, s.Store, cancellationToken));
        }
        return TypedResults.Ok(Paging.Page(context, described, size, d => d.Name));
    }

    private static async Task<Results<Ok<Subscription>, ProblemHttpResult>> GetAsync(string name, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var (definition, problem) = await AuthorizeAsync(name, "events.subscription.read", s, context, cancellationToken);
        return definition is null ? problem! : TypedResults.Ok(await DescribeAsync(definition, s.Store, cancellationToken));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string name, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var (definition, problem) = await AuthorizeAsync(name, "events.subscription.delete", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        return await s.Database.AuditedAsync(s.Audit, () => s.Store.DeleteAsync(name, cancellationToken),
            deleted => deleted ? new AuditEvent("events.subscription.delete", AuditOutcome.Success) { Target = $"subscription:{name}" }.From(context) : null, cancellationToken)
            ? TypedResults.NoContent()
            : Problems.NotFound("The subscription");
    }

    private static async Task<Results<Ok<PullResult>, ValidationProblem, ProblemHttpResult>> PullAsync(
        string name, int? max, double? wait, double? lease, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        var errors = PullErrors(max, lease, options);
        if (wait is { } w && (w < 0 || w > options.MaxPullWait.TotalSeconds))
        {
            errors.Add("wait", $"wait is 0-{options.MaxPullWait.TotalSeconds:0} seconds.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var (definition, problem) = await AuthorizeAsync(name, "events.subscription.pull", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        var leaseFor = lease is { } l ? TimeSpan.FromSeconds(l) : options.DefaultLease;
        var deadline = Environment.TickCount64 + (long)((wait ?? 0) * 1000);
        while (true)
        {
            var events = await s.PullAsync(definition, max ?? 10, leaseFor, cancellationToken);
            var left = deadline - Environment.TickCount64;
            if (events.Count > 0 || left <= 0 || cancellationToken.IsCancellationRequested)
            {
                return TypedResults.Ok(new PullResult(events));
            }
            await s.Signal.WaitAsync(TimeSpan.FromMilliseconds(Math.Min(left, options.PullPollInterval.TotalMilliseconds)), cancellationToken);
        }
    }

    private static async Task<Results<ServerSentEventsResult<LeasedEvent>, ValidationProblem, ProblemHttpResult>> StreamAsync(
        string name, int? max, double? lease, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        var errors = PullErrors(max, lease, options);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var (definition, problem) = await AuthorizeAsync(name, "events.subscription.pull", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        var leaseFor = lease is { } l ? TimeSpan.FromSeconds(l) : options.DefaultLease;
        return TypedResults.ServerSentEvents(Stream(definition, max ?? 10, leaseFor, s, context, cancellationToken));
    }

    /// <summary>Leases and sends events as they come, re-checking the caller's grant between batches.</summary>
    private static async IAsyncEnumerable<SseItem<LeasedEvent>> Stream(SubscriptionDefinition connected, int max, TimeSpan lease, Services s, HttpContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        var name = connected.Name;
        while (!cancellationToken.IsCancellationRequested)
        {
            // The subscription the stream was opened on: deleted, or deleted and created again (by
            // anyone), ends the stream, as does a revoked grant.
            var definition = await s.Store.FindAsync(name, cancellationToken);
            var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
            if (definition is null || definition.CreatedAt != connected.CreatedAt || definition.CreatedBy != connected.CreatedBy
                || !access.AllowsEvery(StreamGrantStore.Read, definition.StreamPrefix ?? ""))
            {
                yield break;
            }
            IReadOnlyList<LeasedEvent> events;
            try
            {
                events = await s.PullAsync(connected, max, lease, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                yield break;
            }
            foreach (var leased in events)
            {
                yield return new SseItem<LeasedEvent>(leased, "event") { EventId = leased.Event.Position.ToString(System.Globalization.CultureInfo.InvariantCulture) };
            }
            if (events.Count == 0)
            {
                await s.Signal.WaitAsync(options.PullPollInterval, cancellationToken);
            }
        }
    }

    private static async Task<Results<Ok<LeaseResult>, ValidationProblem, ProblemHttpResult>> AckAsync(
        string name, AckRequest request, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        if (LeaseIdsProblem(request.LeaseIds) is { } invalid)
        {
            return invalid;
        }
        var (definition, problem) = await AuthorizeAsync(name, "events.subscription.ack", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        var stale = await s.Store.AckAsync(name, request.LeaseIds!.Distinct().ToList(), cancellationToken);
        return TypedResults.Ok(new LeaseResult(request.LeaseIds!.Distinct().Count() - stale.Count, stale));
    }

    private static async Task<Results<Ok<LeaseResult>, ValidationProblem, ProblemHttpResult>> NackAsync(
        string name, NackRequest request, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        if (LeaseIdsProblem(request.LeaseIds) is { } invalid)
        {
            return invalid;
        }
        if (request.RetryAfterSeconds is < 0 or > 86_400)
        {
            return Problems.Validation("retryAfterSeconds", "retryAfterSeconds is 0-86400.");
        }
        if (request.Reason is { Length: > 2000 })
        {
            return Problems.Validation("reason", "reason is at most 2000 characters.");
        }
        var (definition, problem) = await AuthorizeAsync(name, "events.subscription.nack", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        var ids = request.LeaseIds!.Distinct().ToList();
        if (request.Release == true)
        {
            var notHeld = await s.Store.ReleaseAsync(name, ids, cancellationToken);
            return TypedResults.Ok(new LeaseResult(ids.Count - notHeld.Count, notHeld));
        }
        var options = s.Options.Value;
        // Without retryAfterSeconds the delay grows with the attempts of the first event: RetryBase doubled per attempt, up to RetryMax.
        var retryAfter = request.RetryAfterSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : options.RetryBase;
        var stale = await s.Store.NackAsync(name, ids, request.Reason, request.Park == true, retryAfter, options.RetryMax, request.RetryAfterSeconds is null, cancellationToken);
        return TypedResults.Ok(new LeaseResult(ids.Count - stale.Count, stale));
    }

    private static async Task<Results<Ok<ParkedPage>, ValidationProblem, ProblemHttpResult>> ParkedAsync(
        string name, long? after, int? limit, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 500)
        {
            return Problems.Validation("limit", "limit is 1-500.");
        }
        if (after is < 0)
        {
            return Problems.Validation("after", "after is a position (0 or more).");
        }
        var (definition, problem) = await AuthorizeAsync(name, "events.subscription.read", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        var take = limit ?? 100;
        var events = await s.Upcaster.ApplyAsync(await s.Store.ParkedAsync(name, after ?? 0, take, cancellationToken), p => p.Event, (p, e) => p with { Event = e }, cancellationToken);
        return TypedResults.Ok(new ParkedPage(events, events.Count == take ? events[^1].Event.Position : null));
    }

    private static async Task<Results<Ok<ReplayResult>, ValidationProblem, ProblemHttpResult>> ReplayAsync(
        string name, ReplayRequest? request, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        if (request?.Positions is { } positions && (positions.Count is 0 or > 1000 || positions.Any(p => p < 1)))
        {
            return Problems.Validation("positions", "positions lists 1-1000 positions (or leave it out to replay every parked event).");
        }
        var (definition, problem) = await AuthorizeAsync(name, "events.subscription.replay", s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        var replayed = await s.Database.AuditedAsync(s.Audit, () => s.Store.ReplayAsync(name, request?.Positions?.Distinct().ToList(), cancellationToken),
            n => new AuditEvent("events.subscription.replay", AuditOutcome.Success)
            {
                Target = $"subscription:{name}",
                Details = new Dictionary<string, string> { ["replayed"] = n.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            }.From(context), cancellationToken);
        s.Signal.Pulse();
        return TypedResults.Ok(new ReplayResult(replayed));
    }

    private static ValidationErrors PullErrors(int? max, double? lease, EventsOptions options)
    {
        var errors = new ValidationErrors();
        if (max is < 1 or > 1000)
        {
            errors.Add("max", "max is 1-1000.");
        }
        if (lease is { } l && (l < 1 || l > options.MaxLease.TotalSeconds))
        {
            errors.Add("lease", $"lease is 1-{options.MaxLease.TotalSeconds:0} seconds.");
        }
        return errors;
    }

    private static ValidationProblem? LeaseIdsProblem(IReadOnlyList<string>? leaseIds) =>
        leaseIds is not { Count: > 0 and <= 1000 } || leaseIds.Any(id => id is not { Length: > 0 and <= 64 })
            ? Problems.Validation("leaseIds", "leaseIds lists 1-1000 lease ids.")
            : null;

    /// <summary>The subscription, when it exists and the caller may read every stream it covers; otherwise the problem (denials audited).</summary>
    private static async Task<(SubscriptionDefinition? Definition, ProblemHttpResult? Problem)> AuthorizeAsync(
        string name, string action, Services s, HttpContext context, CancellationToken cancellationToken)
    {
        if (!IsName(name) || await s.Store.FindAsync(name, cancellationToken) is not { } definition)
        {
            return (null, Problems.NotFound("The subscription"));
        }
        return await DeniedAsync(definition.StreamPrefix, action, name, s, context, cancellationToken, definition) is { } denied ? (null, denied) : (definition, null);
    }

    /// <summary>
    /// The problem when the caller may not read every stream under <paramref name="prefix"/>, or when
    /// the subscription (<paramref name="subscription"/>, when acting on one) belongs to another
    /// principal (only events.admin acts on others' subscriptions, and on those without an owner):
    /// reading the same streams does not let one tenant consume, replay or delete another's subscription.
    /// </summary>
    private static async Task<ProblemHttpResult?> DeniedAsync(string? prefix, string action, string name, Services s, HttpContext context, CancellationToken cancellationToken,
        SubscriptionDefinition? subscription = null)
    {
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        var foreign = subscription is not null && !access.IsAdministrator && (subscription.CreatedBy is null || subscription.CreatedBy != context.User.ActorId());
        if (access.AllowsEvery(StreamGrantStore.Read, prefix ?? "") && !foreign)
        {
            return null;
        }
        await s.Audit.AppendAsync(new AuditEvent(action, AuditOutcome.Denied) { Target = $"subscription:{name}", Details = new Dictionary<string, string> { ["streamPrefix"] = prefix ?? "" } }.From(context), cancellationToken);
        return Problems.Forbidden(foreign ? $"Subscription '{name}' belongs to another principal." : prefix is null
            ? "A subscription without streamPrefix needs read on every stream."
            : $"No grant lets the caller read every stream starting with '{prefix}'.");
    }

    private static async Task<Subscription> DescribeAsync(SubscriptionDefinition d, SubscriptionStore store, CancellationToken cancellationToken)
    {
        var p = await store.ProgressAsync(d, cancellationToken);
        return new Subscription(d.Name, new SubscriptionFilter(d.StreamPrefix, d.EventType), d.Mode, d.MaxAttempts, p.Checkpoint, p.Head, p.LagEvents, p.LagSeconds,
            p.Leased, p.Retrying, p.Parked, DateTimeOffset.FromUnixTimeMilliseconds(d.CreatedAt), d.CreatedBy);
    }

    private static bool IsName(string value) => value.Length <= 100 && Name().IsMatch(value);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
    private static partial Regex Name();
}
