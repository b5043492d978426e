using System.Globalization;
using Fundament.Messaging.Storage;

namespace Fundament.Messaging.Api;

/// <summary>
/// <c>/api/v1/dead-letters</c>: what consumer groups gave up on, with reason, exception type,
/// attempts and first and last failure; replayed (idempotently: only what is a dead letter right
/// now moves) or purged by sequence, by key or all at once. A caller sees and acts on the dead
/// letters of its own groups (messaging.admin: of every group).
/// </summary>
internal static class DeadLettersApi
{
    public static RouteGroupBuilder MapDeadLettersApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/dead-letters").WithTags("Messaging").RequireAuthorization(Policies.Authenticated);
        group.MapGet("/", ListAsync).WithName("ListDeadLetters")
            .WithSummary("Dead letters by topic, group and sequence, a page at a time (limit 1-500, after: the cursor in the Link rel=next header); filter by topic (required without messaging.admin), group and key.");
        group.MapPost("/replay", ReplayAsync).WithName("ReplayDeadLetters")
            .WithSummary("Delivers a group's dead letters again with fresh attempts: the listed sequences, one key's, or all. Only current dead letters move; an ordered group gets them in key order.");
        group.MapPost("/purge", PurgeAsync).WithName("PurgeDeadLetters")
            .WithSummary("Deletes a group's dead letters for good: the listed sequences, one key's, or all (in an ordered group this lets the rest of their keys go).");
        return group;
    }

    private static async Task<Results<Ok<IReadOnlyList<DeadLetter>>, ValidationProblem, ProblemHttpResult>> ListAsync(
        string? topic, string? group, string? key, int? limit, string? after, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var size = Paging.Validate(errors, limit, after);
        if (topic is not null && !MessagingAccess.IsTopic(topic))
        {
            errors.Add("topic", MessagingAccess.TopicRule);
        }
        if (group is not null && !MessagingAccess.IsGroup(group))
        {
            errors.Add("group", "group is 1-100 characters of letters, digits, '.', '_', ':' and '-'.");
        }
        if (key is { Length: 0 or > 200 } || MessagingAccess.HasControlCharacters(key))
        {
            errors.Add("key", "key is 1-200 characters, no control characters.");
        }
        var cursor = after is null ? null : ParseCursor(after);
        if (after is not null && cursor is null)
        {
            errors.Add("after", "after is the cursor from a Link rel=next header.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        if (!access.IsAdministrator)
        {
            if (topic is null)
            {
                return Problems.Validation("topic", "topic is required (only messaging.admin lists the dead letters of every topic).");
            }
            if (await MessagingAccess.DeniedAsync(topic, TopicGrantStore.Consume, "messaging.deadletters.list", s, context, cancellationToken) is { } denied)
            {
                return denied;
            }
        }
        var owner = access.IsAdministrator ? null : context.User.ActorId() ?? "";
        var (rows, trimmed) = await s.Store.DeadLettersAsync(topic, group, key, owner, cursor, Paging.Take(size), s.Options.Value.MaxPageBytes, cancellationToken);
        if (trimmed && rows.Count <= size)
        {
            // Cut short by Fundament:Messaging:MaxPageBytes: the next page starts after the last one returned.
            context.Response.Headers.Link = Paging.NextLink(context.Request, Cursor(rows[^1]), size);
            return TypedResults.Ok(rows);
        }
        return TypedResults.Ok(Paging.Page(context, rows, size, Cursor));
    }

    private static string Cursor(DeadLetter d) => $"{d.Topic}/{d.Group}/{d.Sequence.ToString(CultureInfo.InvariantCulture)}";

    private static DeadLetterCursor? ParseCursor(string after)
    {
        var parts = after.Split('/');
        return parts.Length == 3 && MessagingAccess.IsTopic(parts[0]) && MessagingAccess.IsGroup(parts[1])
            && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var seq)
            ? new DeadLetterCursor(parts[0], parts[1], seq)
            : null;
    }

    private static Task<Results<Ok<DeadLetterResult>, ValidationProblem, ProblemHttpResult>> ReplayAsync(
        DeadLetterSelection request, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken) =>
        ActAsync(request, "messaging.deadletters.replay", (group, filter) => s.Store.ReplayAsync(group, filter, cancellationToken), s, context, cancellationToken);

    private static Task<Results<Ok<DeadLetterResult>, ValidationProblem, ProblemHttpResult>> PurgeAsync(
        DeadLetterSelection request, [AsParameters] MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken) =>
        ActAsync(request, "messaging.deadletters.purge", (group, filter) => s.Store.PurgeAsync(group, filter, cancellationToken), s, context, cancellationToken);

    private static async Task<Results<Ok<DeadLetterResult>, ValidationProblem, ProblemHttpResult>> ActAsync(
        DeadLetterSelection request, string action, Func<GroupDefinition, DeadLetterFilter, Task<int>> act, MessagingAccess.Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        if (!MessagingAccess.IsTopic(request.Topic))
        {
            errors.Add("topic", MessagingAccess.TopicRule);
        }
        if (!MessagingAccess.IsGroup(request.Group))
        {
            errors.Add("group", "group is required: 1-100 characters of letters, digits, '.', '_', ':' and '-'.");
        }
        var selectors = (request.Sequences is null ? 0 : 1) + (request.Key is null ? 0 : 1) + (request.All == true ? 1 : 0);
        if (selectors != 1)
        {
            errors.Add("sequences", "Select with exactly one of sequences, key or all: true.");
        }
        if (request.Sequences is { } sequences && (sequences.Count is 0 or > 1000 || sequences.Any(q => q < 1)))
        {
            errors.Add("sequences", "sequences lists 1-1000 sequences of dead letters.");
        }
        if (request.Key is { Length: 0 or > 200 } || MessagingAccess.HasControlCharacters(request.Key))
        {
            errors.Add("key", "key is 1-200 characters, no control characters.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var (definition, problem) = await MessagingAccess.GroupAsync(request.Topic!, request.Group!, action, s, context, cancellationToken);
        if (definition is null)
        {
            return problem!;
        }
        var filter = new DeadLetterFilter(request.Sequences?.Distinct().ToList(), request.Key);
        var count = await s.Database.AuditedAsync(s.Audit, () => act(definition, filter),
            n => new AuditEvent(action, AuditOutcome.Success)
            {
                Target = $"consumer-group:{definition.Topic}/{definition.Name}",
                Details = new Dictionary<string, string>
                {
                    ["count"] = n.ToString(CultureInfo.InvariantCulture),
                    ["selection"] = request.All == true ? "all" : request.Key is not null ? "key" : "sequences",
                },
            }.From(context), cancellationToken);
        s.Signal.Notify();
        return TypedResults.Ok(new DeadLetterResult(count));
    }
}
