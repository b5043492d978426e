using Fundament.Messaging.Transport;
using System.Text.RegularExpressions;
using Fundament.Messaging.Storage;

namespace Fundament.Messaging.Api;

/// <summary>
/// Who may do what on the bus. Publishing needs the publish grant on the topic; everything about a
/// consumer group needs the consume grant on its topic, and the group must be the caller's own
/// (created by the same principal) unless the caller holds messaging.admin. Grants are checked on
/// every call, so a revoked grant stops a consumer at once. Denials are audited.
/// </summary>
internal static partial class MessagingAccess
{
    internal sealed record Services(MessageStore Store, IMessageTransport Transport, TopicGrantStore Grants, PublishSignal Signal, MessagingMetrics Metrics, IDatabase Database, IAuditLog Audit,
        IOptions<MessagingOptions> Options);

    /// <summary>1-200 characters of letters, digits, '.', '_', ':' and '-', starting with a letter or digit.</summary>
    public static bool IsTopic(string? value) => value is { Length: > 0 and <= 200 } && Name().IsMatch(value);

    /// <summary>A topic prefix for a grant: like a topic, but it may start anywhere.</summary>
    public static bool IsTopicPrefix(string value) => value.Length <= 200 && Prefix().IsMatch(value);

    /// <summary>1-100 characters of letters, digits, '.', '_', ':' and '-', starting with a letter or digit.</summary>
    public static bool IsGroup(string? value) => value is { Length: > 0 and <= 100 } && Name().IsMatch(value);

    /// <summary>Whether <paramref name="value"/> holds a control character (PostgreSQL text cannot hold NUL; none belongs in a key or a name).</summary>
    public static bool HasControlCharacters(string? value, bool allowLineBreaks = false) =>
        value is not null && value.Any(c => char.IsControl(c) && !(allowLineBreaks && c is '\n' or '\r' or '\t'));

    public const string TopicRule = "topic is 1-200 characters of letters, digits, '.', '_', ':' and '-', starting with a letter or digit.";

    /// <summary>The problem when the caller may not use <paramref name="capability"/> on <paramref name="topic"/> (audited), else null.</summary>
    public static async Task<ProblemHttpResult?> DeniedAsync(string topic, string capability, string action, Services s, HttpContext context, CancellationToken cancellationToken)
    {
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        if (access.Allows(capability, topic))
        {
            return null;
        }
        await AuditDeniedAsync(action, $"topic:{topic}", s, context, cancellationToken);
        return Problems.Forbidden($"No grant lets the caller {capability} on topic '{topic}'.");
    }

    /// <summary>The group, when it exists, the caller may consume its topic and it is the caller's own (or the caller is messaging.admin); otherwise the problem.</summary>
    public static async Task<(GroupDefinition? Group, ProblemHttpResult? Problem)> GroupAsync(string topic, string group, string action, Services s, HttpContext context, CancellationToken cancellationToken)
    {
        if (!IsTopic(topic) || !IsGroup(group) || await s.Store.FindGroupAsync(topic, group, cancellationToken) is not { } definition)
        {
            return (null, Problems.NotFound("The consumer group"));
        }
        var access = await s.Grants.AccessForAsync(context.User, cancellationToken);
        var foreign = !access.IsAdministrator && (definition.CreatedBy is null || definition.CreatedBy != context.User.ActorId());
        if (access.Allows(TopicGrantStore.Consume, topic) && !foreign)
        {
            return (definition, null);
        }
        await AuditDeniedAsync(action, $"consumer-group:{topic}/{group}", s, context, cancellationToken);
        return (null, Problems.Forbidden(foreign ? $"Consumer group '{group}' of topic '{topic}' belongs to another principal." : $"No grant lets the caller consume on topic '{topic}'."));
    }

    /// <summary>
    /// The problem when the platform itself consumes <paramref name="group"/> (the relay of its domain
    /// events, <c>fundament.*</c>): nobody takes its messages or deletes it through the API, messaging.admin
    /// included. Its counts and dead letters stay visible, and its dead letters can be replayed.
    /// </summary>
    public static ProblemHttpResult? PlatformConsumed(GroupDefinition group) =>
        DomainEventRelay.IsPlatformGroup(group)
            ? Problems.Conflict($"Consumer group '{group.Name}' of topic '{group.Topic}' is consumed by the platform itself; it cannot be pulled, settled or deleted.")
            : null;

    private static Task AuditDeniedAsync(string action, string target, Services s, HttpContext context, CancellationToken cancellationToken) =>
        s.Audit.AppendAsync(new AuditEvent(action, AuditOutcome.Denied) { Target = target }.From(context), cancellationToken);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
    private static partial Regex Name();

    [GeneratedRegex("^[A-Za-z0-9._:-]*$")]
    private static partial Regex Prefix();
}
