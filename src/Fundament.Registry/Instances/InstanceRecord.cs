using System.Text.Json;

namespace Fundament.Registry.Instances;

/// <summary>A row of <c>registry_instances</c>.</summary>
internal sealed class InstanceRecord
{
    public string Id { get; init; } = "";
    public string Service { get; init; } = "";
    public string Environment { get; init; } = "*";
    public string Address { get; init; } = "";
    public long Port { get; init; }
    public string Scheme { get; init; } = "http";
    public string? Version { get; init; }
    public string Tags { get; init; } = "[]";
    public string Metadata { get; init; } = "{}";
    public string Routes { get; init; } = "[]";
    public string CheckKind { get; init; } = "none";
    public string? CheckPath { get; init; }
    public long? CheckIntervalMs { get; init; }
    public long? CheckTimeoutMs { get; init; }
    public long? TtlMs { get; init; }
    public long? DeregisterAfterMs { get; init; }
    public string Status { get; init; } = InstanceStatus.Critical;
    public string? Output { get; init; }
    public long StatusChangedAt { get; init; }
    public long? CriticalSince { get; init; }
    public long? LastHeartbeatAt { get; init; }
    public string RegisteredBy { get; init; } = "";
    public long RegisteredAt { get; init; }

    public IReadOnlyList<string> TagList => JsonSerializer.Deserialize<string[]>(Tags) ?? [];

    public IReadOnlyDictionary<string, string> MetadataMap => JsonSerializer.Deserialize<Dictionary<string, string>>(Metadata) ?? [];

    public InstanceResponse ToResponse() => new(Id, Service, Address, (int)Port, Scheme, Status, TagList, MetadataMap, Version);

    public InstanceDetail ToDetail()
    {
        using var routes = JsonDocument.Parse(Routes);
        return new InstanceDetail(Id, Service, Environment, Address, (int)Port, Scheme, Status, Output, DateTimeOffset.FromUnixTimeMilliseconds(StatusChangedAt),
            TagList, MetadataMap, Version, CheckKind, CheckPath, Format(CheckIntervalMs), Format(TtlMs), Format(DeregisterAfterMs),
            LastHeartbeatAt is { } h ? DateTimeOffset.FromUnixTimeMilliseconds(h) : null, RegisteredBy, DateTimeOffset.FromUnixTimeMilliseconds(RegisteredAt),
            routes.RootElement.Clone());
    }

    private static string? Format(long? ms) => ms is { } v ? Durations.Format(TimeSpan.FromMilliseconds(v)) : null;
}

/// <summary>A validated registration, ready to store.</summary>
internal sealed record InstanceDefinition(
    string Id,
    string Service,
    string Environment,
    string Address,
    int Port,
    string Scheme,
    string? Version,
    IReadOnlyList<string> Tags,
    IReadOnlyDictionary<string, string> Metadata,
    string RoutesJson,
    string CheckKind,
    string? CheckPath,
    TimeSpan? CheckInterval,
    TimeSpan? CheckTimeout,
    TimeSpan? Ttl,
    TimeSpan? DeregisterAfter);

/// <summary>An HTTP check claimed by this replica.</summary>
internal sealed class CheckWork
{
    public string Id { get; init; } = "";
    public string Service { get; init; } = "";
    public string Scheme { get; init; } = "http";
    public string Address { get; init; } = "";
    public long Port { get; init; }
    public string CheckPath { get; init; } = "/";
    public long CheckTimeoutMs { get; init; }
}
