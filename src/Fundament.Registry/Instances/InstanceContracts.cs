using System.Text.Json;

namespace Fundament.Registry.Instances;

/// <summary>Body of <c>POST /api/v1/registry/instances</c>.</summary>
/// <param name="Service">Required: the service name (a-z, 0-9, '.', '_', '-'), one the caller may register.</param>
/// <param name="InstanceId">Optional; default <c>&lt;service&gt;-&lt;random&gt;</c>. Registering the same id again updates it.</param>
/// <param name="Address">Required: host name or IP the instance is reached at.</param>
/// <param name="Port">Required: 1-65535.</param>
/// <param name="Scheme">Optional: <c>http</c> (default) or <c>https</c>.</param>
/// <param name="Environment">Optional: the environment whose configuration is returned; default <c>*</c>.</param>
/// <param name="Check">Optional: <c>{"http":"/health/ready","interval":"10s","timeout":"2s"}</c> or <c>{"ttl":"15s"}</c>; none means always passing.</param>
/// <param name="DeregisterAfter">Optional: remove the instance after it has been critical this long.</param>
/// <param name="Routes">Optional: gateway routes the instance serves (used by the gateway role).</param>
public sealed record RegisterRequest(
    string? Service,
    string? InstanceId,
    string? Address,
    int? Port,
    string? Scheme,
    string? Version,
    string? Environment,
    IReadOnlyList<string>? Tags,
    IReadOnlyDictionary<string, string>? Metadata,
    CheckDefinition? Check,
    string? DeregisterAfter,
    JsonElement? Routes);

/// <summary>An active HTTP check (<see cref="Http"/>, <see cref="Interval"/>, <see cref="Timeout"/>) or a TTL the instance must heartbeat within.</summary>
public sealed record CheckDefinition(string? Http, string? Interval, string? Timeout, string? Ttl);

/// <summary>Answer of a registration: what the instance needs to run.</summary>
/// <param name="HeartbeatInterval">For TTL checks: how often to call the heartbeat endpoint (a third of the TTL).</param>
/// <param name="Config">The resolved configuration of the service in its environment, when the caller may read it (config.read, or config.read.own for its own service); otherwise empty.</param>
/// <param name="Secrets">Secret paths the caller may read.</param>
public sealed record RegisterResponse(string InstanceId, string? HeartbeatInterval, IReadOnlyDictionary<string, JsonElement> Config, IReadOnlyList<string> Secrets);

/// <summary>Body of a heartbeat; optional. A TTL check is passing unless the instance reports otherwise.</summary>
public sealed record HeartbeatRequest(string? Status, string? Output);

/// <summary>An instance as discovery returns it.</summary>
public sealed record InstanceResponse(
    string InstanceId,
    string Service,
    string Address,
    int Port,
    string Scheme,
    string Status,
    IReadOnlyList<string> Tags,
    IReadOnlyDictionary<string, string> Metadata,
    string? Version);

/// <summary>An instance with its check and status details.</summary>
public sealed record InstanceDetail(
    string InstanceId,
    string Service,
    string Environment,
    string Address,
    int Port,
    string Scheme,
    string Status,
    string? Output,
    DateTimeOffset StatusChangedAt,
    IReadOnlyList<string> Tags,
    IReadOnlyDictionary<string, string> Metadata,
    string? Version,
    string CheckKind,
    string? CheckHttp,
    string? CheckInterval,
    string? Ttl,
    string? DeregisterAfter,
    DateTimeOffset? LastHeartbeatAt,
    string RegisteredBy,
    DateTimeOffset RegisteredAt,
    JsonElement Routes);

/// <summary>Instances of one service by status.</summary>
public sealed record ServiceSummary(string Service, int Passing, int Warning, int Critical, int Total);

/// <summary>One status change of an instance.</summary>
public sealed record StatusChange(DateTimeOffset At, string? From, string To, string? Output);

/// <summary>Body of <c>POST /api/v1/registry/grants</c>: lets a service client register a service name.</summary>
public sealed record GrantRequest(string? ClientId, string? Service);

public static class InstanceStatus
{
    public const string Passing = "passing";
    public const string Warning = "warning";
    public const string Critical = "critical";

    public static bool IsValid(string? status) => status is Passing or Warning or Critical;
}
