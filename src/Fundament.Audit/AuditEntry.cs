using System.Text.Json.Serialization;

namespace Fundament.Audit;

/// <summary>An audit log entry as stored and as returned by <c>GET /api/v1/audit</c>.</summary>
public sealed class AuditEntry
{
    /// <summary>Position in the chain, from 1 without gaps.</summary>
    public long Seq { get; init; }

    public string Id { get; init; } = "";

    /// <summary>Unix milliseconds; see <see cref="Time"/>.</summary>
    [JsonIgnore]
    public long At { get; init; }

    [JsonPropertyName("at")]
    public DateTimeOffset Time => DateTimeOffset.FromUnixTimeMilliseconds(At);

    public string Actor { get; init; } = "";

    public string? ActorName { get; init; }

    public string Action { get; init; } = "";

    public string? Target { get; init; }

    public string Outcome { get; init; } = "";

    public string? SourceIp { get; init; }

    /// <summary>Details as the canonical JSON text that was hashed.</summary>
    [JsonIgnore]
    public string? Details { get; init; }

    [JsonPropertyName("details")]
    public IReadOnlyDictionary<string, string>? DetailsMap =>
        Details is null ? null : System.Text.Json.JsonSerializer.Deserialize(Details, AuditJsonContext.Default.DictionaryStringString);

    public string PrevHash { get; init; } = "";

    public string Hash { get; init; } = "";

    /// <summary>This entry at its place in the chain.</summary>
    internal AuditEntry Linked(long seq, string prevHash) => new()
    {
        Seq = seq, Id = Id, At = At, Actor = Actor, ActorName = ActorName, Action = Action, Target = Target, Outcome = Outcome,
        SourceIp = SourceIp, Details = Details, PrevHash = prevHash,
    };
}

[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class AuditJsonContext : JsonSerializerContext;
