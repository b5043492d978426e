using System.Text.Json;
using System.Text.RegularExpressions;
using Fundament.Events.Storage;

namespace Fundament.Events.Api;

/// <summary><c>/api/v1/streams</c>: append to and read streams, and read everything in commit order (<c>$all</c>).</summary>
internal static partial class StreamsApi
{
    /// <summary>The name under which every stream is read together, by global position.</summary>
    public const string All = "$all";

    public static RouteGroupBuilder MapStreamsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/streams").WithTags("Event store").RequireAuthorization(Policies.Authenticated);
        group.MapPost("/{stream}/events", AppendAsync).WithName("AppendEvents")
            .WithSummary("Appends events to a stream if it is at expectedVersion; re-sending the same event ids answers 200 with the first result and appends nothing.");
        group.MapPost("/events", AppendManyAsync).WithName("AppendEventsToStreams")
            .WithSummary("Appends to several streams in one transaction: every stream at its expectedVersion, or nothing is written.");
        group.MapGet("/{stream}/events", ReadAsync).WithName("ReadEvents")
            .WithSummary("A stream's events from a version (from, direction=forward|backward, limit), or after its latest snapshot (fromSnapshot=true, which the page carries); $all reads every stream after fromPosition in commit order, filtered by streamPrefix and type.");
        return group;
    }

    /// <summary>Everything an endpoint here needs.</summary>
    internal sealed record Services(EventStore Store, AppendWriter Writer, StreamGrantStore Grants, IDatabase Database, IAuditLog Audit, Core.Quotas.IQuotas Quotas, AppendSignal Signal,
        SnapshotStore Snapshots, Upcasting.EventUpcaster Upcaster, IOptions<EventsOptions> Options);

    private static async Task<Results<Created<AppendResult>, Ok<AppendResult>, ValidationProblem, ProblemHttpResult>> AppendAsync(
        string stream, AppendRequest request, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var append = Validate("", stream, request.ExpectedVersion, request.Events, s.Options.Value, errors);
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var outcome = await AppendCheckedAsync([append!], s, context, cancellationToken);
        return outcome switch
        {
            AppendOutcome.Written written => TypedResults.Created($"/api/v1/streams/{stream}/events?from={written.Results[0].FromVersion}", written.Results[0]),
            AppendOutcome.AlreadyWritten again => TypedResults.Ok(again.Results[0]),
            var refused => Refusal(refused),
        };
    }

    private static async Task<Results<Created<MultiAppendResult>, Ok<MultiAppendResult>, ValidationProblem, ProblemHttpResult>> AppendManyAsync(
        MultiAppendRequest request, [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var options = s.Options.Value;
        var errors = new ValidationErrors();
        if (request.Appends is not { Count: > 0 } appends || appends.Count > options.MaxStreamsPerAppend)
        {
            return Problems.Validation("appends", $"appends lists 1-{options.MaxStreamsPerAppend} streams.");
        }
        var parsed = new List<StreamAppend>();
        for (var i = 0; i < appends.Count; i++)
        {
            if (Validate($"appends[{i}].", appends[i]?.Stream, appends[i]?.ExpectedVersion, appends[i]?.Events, options, errors) is { } append)
            {
                parsed.Add(append);
            }
        }
        if (parsed.GroupBy(a => a.Stream, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            errors.Add("appends", $"stream '{twice.Key}' is listed twice; put its events in one entry.");
        }
        if (parsed.Sum(a => a.Events.Count) > options.MaxEventsPerAppend)
        {
            errors.Add("appends", $"at most {options.MaxEventsPerAppend} events in one append.");
        }
        if (DuplicateId(parsed) is { } duplicate)
        {
            errors.Add("appends", $"event id '{duplicate}' appears twice.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        var outcome = await AppendCheckedAsync(parsed, s, context, cancellationToken);
        return outcome switch
        {
            AppendOutcome.Written written => TypedResults.Created("/api/v1/streams/$all/events", new MultiAppendResult(written.Results)),
            AppendOutcome.AlreadyWritten again => TypedResults.Ok(new MultiAppendResult(again.Results)),
            var refused => Refusal(refused),
        };
    }

    /// <summary>Checks the caller's grants, then appends with its audit entry in the same transaction.</summary>
    private static async Task<AppendOutcome> AppendCheckedAsync(IReadOnlyList<StreamAppend> appends, Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        if (appends.FirstOrDefault(a => !access.Allows(StreamGrantStore.Append, a.Stream)) is { } denied)
        {
            await s.Audit.AppendAsync(new AuditEvent("events.append", AuditOutcome.Denied) { Target = $"stream:{denied.Stream}" }.From(context), cancellationToken);
            return new Forbidden(denied.Stream);
        }
        // Group-committed with the appends other requests make meanwhile; its audit entry commits with it.
        // The quota is checked and counted in that transaction, behind its lock, so two appends cannot both take the last room.
        // Who and from where, read here: the writer runs on another thread.
        var entry = new AuditEvent("events.append", AuditOutcome.Success).From(context);
        var outcome = await s.Writer.AppendAsync(appends, Core.Quotas.QuotaSubject.Of(context.User), outcome => outcome is AppendOutcome.Written written
            ? entry with
            {
                Target = written.Results.Count == 1 ? $"stream:{written.Results[0].Stream}" : "streams",
                Details = new Dictionary<string, string>
                {
                    ["streams"] = string.Join(",", written.Results.Select(r => r.Stream)),
                    ["events"] = appends.Sum(a => a.Events.Count).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["toPosition"] = written.Results[^1].Position.ToString(System.Globalization.CultureInfo.InvariantCulture),
                },
            }
            : null);
        if (outcome is AppendOutcome.Written)
        {
            s.Signal.Pulse();
        }
        return outcome;
    }

    /// <summary>Not a store outcome: the caller holds no append grant on the stream.</summary>
    private sealed record Forbidden(string Stream) : AppendOutcome;

    private static ProblemHttpResult Refusal(AppendOutcome refused) => refused switch
    {
        AppendOutcome.WrongVersion wrong => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Wrong expected version",
            detail: wrong.ActualVersion < 0 ? $"Stream '{wrong.Stream}' does not exist." : $"Stream '{wrong.Stream}' is at version {wrong.ActualVersion}.",
            extensions: new Dictionary<string, object?> { ["stream"] = wrong.Stream, ["actualVersion"] = wrong.ActualVersion }),
        AppendOutcome.IdsInUse used => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Event ids in use",
            detail: "Some of these event ids were appended before, elsewhere or in another order; a retry must send exactly the same events.",
            extensions: new Dictionary<string, object?> { ["ids"] = used.Ids }),
        Forbidden forbidden => Problems.Forbidden($"No grant lets the caller append to stream '{forbidden.Stream}'."),
        _ => throw new InvalidOperationException($"Unexpected outcome {refused}."),
    };

    private static async Task<Results<Ok<EventPage>, ValidationProblem, ProblemHttpResult>> ReadAsync(
        string stream, long? from, string? direction, int? limit, long? fromPosition, string? streamPrefix, string? type, bool? fromSnapshot,
        [AsParameters] Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var max = s.Options.Value.MaxReadCount;
        var errors = new ValidationErrors();
        if (limit is { } l && (l < 1 || l > max))
        {
            errors.Add("limit", $"limit must be between 1 and {max}.");
        }
        var take = limit ?? Math.Min(100, max);
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        if (stream == All)
        {
            if (fromPosition is < 0)
            {
                errors.Add("fromPosition", "fromPosition must not be negative.");
            }
            if (streamPrefix is not null && !IsStreamPrefix(streamPrefix))
            {
                errors.Add("streamPrefix", "streamPrefix is 1-200 characters of letters, digits, '.', '_', ':' and '-'.");
            }
            if (type is not null && !IsName(type))
            {
                errors.Add("type", "type is 1-128 characters of letters, digits, '.', '_', ':' and '-'.");
            }
            if (fromSnapshot is not null || from is not null || direction is not null)
            {
                errors.Add("stream", "$all is read by fromPosition, forward; from, direction and fromSnapshot are for one stream.");
            }
            if (errors.Any)
            {
                return errors.ToProblem();
            }
            if (!access.AllowsEvery(StreamGrantStore.Read, streamPrefix ?? ""))
            {
                await s.Audit.AppendAsync(new AuditEvent("events.read", AuditOutcome.Denied) { Target = $"stream:{All}", Details = new Dictionary<string, string> { ["streamPrefix"] = streamPrefix ?? "" } }.From(context), cancellationToken);
                return Problems.Forbidden(streamPrefix is null
                    ? "Reading $all without streamPrefix needs read on every stream; pass the streamPrefix your grant covers."
                    : $"No grant lets the caller read every stream starting with '{streamPrefix}'.");
            }
            var all = await s.Upcaster.ApplyAsync(await s.Store.ReadAllAsync(fromPosition ?? 0, streamPrefix, type, take, cancellationToken), cancellationToken);
            return TypedResults.Ok(new EventPage(all, all.Count == take ? all[^1].Position : null));
        }
        if (!IsStream(stream))
        {
            errors.Add("stream", StreamRule);
        }
        if (direction is not (null or "forward" or "backward"))
        {
            errors.Add("direction", "direction must be forward or backward.");
        }
        if (from is < 0)
        {
            errors.Add("from", "from must not be negative.");
        }
        if (fromSnapshot == true && (from is not null || direction == "backward"))
        {
            errors.Add("fromSnapshot", "fromSnapshot reads forward from the latest snapshot; it does not combine with from or direction=backward.");
        }
        if (errors.Any)
        {
            return errors.ToProblem();
        }
        if (!access.Allows(StreamGrantStore.Read, stream))
        {
            await s.Audit.AppendAsync(new AuditEvent("events.read", AuditOutcome.Denied) { Target = $"stream:{stream}" }.From(context), cancellationToken);
            return Problems.Forbidden($"No grant lets the caller read stream '{stream}'.");
        }
        var forward = direction != "backward";
        var snapshot = fromSnapshot == true ? await s.Snapshots.GetAsync(stream, cancellationToken) : null;
        var start = snapshot is not null ? snapshot.Version + 1 : from ?? (forward ? 0 : long.MaxValue);
        var events = await s.Upcaster.ApplyAsync(await s.Store.ReadStreamAsync(stream, start, forward, take, cancellationToken), cancellationToken);
        if (events.Count == 0 && snapshot is null && await s.Store.VersionAsync(stream, cancellationToken) < 0)
        {
            return Problems.NotFound("The stream");
        }
        long? next = events.Count < take ? null : forward ? events[^1].Version + 1 : events[^1].Version - 1;
        return TypedResults.Ok(new EventPage(events, next is < 0 ? null : next, snapshot));
    }

    internal const string StreamRule = "a stream name is 1-200 characters of letters, digits, '.', '_', ':' and '-', starting with a letter or digit.";

    /// <summary>One stream's part of an append, checked; null (with <paramref name="errors"/> filled) when it is not acceptable.</summary>
    private static StreamAppend? Validate(string field, string? stream, JsonElement? expectedVersion, IReadOnlyList<NewEvent>? events, EventsOptions options, ValidationErrors errors)
    {
        var ok = true;
        void Problem(string key, string message)
        {
            errors.Add(key, message);
            ok = false;
        }
        if (stream is null || !IsStream(stream))
        {
            Problem(field + "stream", StreamRule);
        }
        if (!ExpectedVersion.TryParse(expectedVersion, out var expected))
        {
            Problem(field + "expectedVersion", "expectedVersion is \"any\", \"no_stream\", \"exists\" or the stream's version (0 or more).");
        }
        var stored = new List<EventToStore>();
        if (events is not { Count: > 0 } list || list.Count > options.MaxEventsPerAppend)
        {
            Problem(field + "events", $"events lists 1-{options.MaxEventsPerAppend} events.");
        }
        else
        {
            for (var i = 0; i < list.Count; i++)
            {
                var at = $"{field}events[{i}]";
                if (list[i] is not { } e)
                {
                    Problem(at, "an event is an object with id, type and data.");
                    continue;
                }
                if (e.Id is null || !IsName(e.Id, 64))
                {
                    Problem(at + ".id", "id is 1-64 characters of letters, digits, '.', '_', ':' and '-' (a UUID is usual).");
                }
                if (e.Type is null || !IsName(e.Type))
                {
                    Problem(at + ".type", "type is 1-128 characters of letters, digits, '.', '_', ':' and '-'.");
                }
                if (e.Data is not { } data || data.ValueKind == JsonValueKind.Undefined)
                {
                    Problem(at + ".data", "data is required (any JSON value).");
                    continue;
                }
                if (e.Metadata is { } m && m.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null or JsonValueKind.Undefined))
                {
                    Problem(at + ".metadata", "metadata must be an object.");
                    continue;
                }
                if (e.SchemaVersion is < 1 or > 10_000)
                {
                    Problem(at + ".schemaVersion", "schemaVersion is 1-10000 (default 1).");
                    continue;
                }
                var dataText = data.GetRawText();
                var metadataText = e.Metadata is { ValueKind: JsonValueKind.Object } meta ? meta.GetRawText() : null;
                if (dataText.Length + (metadataText?.Length ?? 0) > options.MaxEventBytes)
                {
                    Problem(at, $"data and metadata together must be at most {options.MaxEventBytes} bytes.");
                    continue;
                }
                stored.Add(new EventToStore(e.Id ?? "", e.Type ?? "", dataText, metadataText, e.SchemaVersion ?? 1));
            }
        }
        if (stored.Count > 0 && DuplicateId([new StreamAppend("", ExpectedVersion.Any, stored)]) is { } duplicate)
        {
            Problem(field + "events", $"event id '{duplicate}' appears twice.");
        }
        return ok ? new StreamAppend(stream!, expected, stored) : null;
    }

    private static string? DuplicateId(IEnumerable<StreamAppend> appends) =>
        appends.SelectMany(a => a.Events).GroupBy(e => e.Id, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1)?.Key;

    internal static bool IsStream(string value) => value.Length <= 200 && StreamName().IsMatch(value);

    internal static bool IsStreamPrefix(string value) => value.Length is > 0 and <= 200 && NameChars().IsMatch(value);

    internal static bool IsName(string value, int max = 128) => value.Length <= max && NameChars().IsMatch(value);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
    private static partial Regex StreamName();

    [GeneratedRegex("^[A-Za-z0-9._:-]+$")]
    private static partial Regex NameChars();
}
