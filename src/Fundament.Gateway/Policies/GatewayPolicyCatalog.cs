using System.Text.Json;
using Fundament.Core.Watch;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.Hosting;

namespace Fundament.Gateway.Policies;

/// <summary>One policy as the gateway uses it.</summary>
internal sealed record PolicyEntry<T>(string Name, T Options, string Source, long Version, string? UpdatedBy, DateTimeOffset? UpdatedAt);

/// <summary>Every policy at one change index; immutable, swapped whole.</summary>
internal sealed class PolicySnapshot(
    long index,
    IReadOnlyDictionary<string, PolicyEntry<RateLimitPolicyOptions>> rateLimits,
    IReadOnlyDictionary<string, PolicyEntry<CorsPolicyOptions>> cors)
{
    public long Index { get; } = index;

    public IReadOnlyDictionary<string, PolicyEntry<RateLimitPolicyOptions>> RateLimits { get; } = rateLimits;

    public IReadOnlyDictionary<string, PolicyEntry<CorsPolicyOptions>> Cors { get; } = cors;

    /// <summary>The CORS policies built once per snapshot, not per request.</summary>
    public IReadOnlyDictionary<string, CorsPolicy> CorsPolicies { get; } = cors.ToDictionary(c => c.Key, c => Build(c.Value.Options), StringComparer.Ordinal);

    private static CorsPolicy Build(CorsPolicyOptions p)
    {
        var policy = new CorsPolicyBuilder();
        if (p.AllowedOrigins.Contains("*"))
        {
            policy.AllowAnyOrigin();
        }
        else
        {
            policy.WithOrigins(p.AllowedOrigins);
        }
        policy.WithMethods(p.AllowedMethods).WithHeaders(p.AllowedHeaders).WithExposedHeaders(p.ExposedHeaders).SetPreflightMaxAge(p.MaxAge);
        if (p.AllowCredentials)
        {
            policy.AllowCredentials();
        }
        return policy.Build();
    }
}

/// <summary>
/// The gateway's rate-limit and CORS policies as runtime data shared by every node: the read-only
/// seeds of <c>Fundament:Gateway:RateLimits</c> and <c>:Cors</c>, plus what the API stored. Each
/// node re-reads the store when its change index moves (checked every second) and at once after a
/// change made through this node, so the registry validates route names against the same set the
/// gateways serve, and a policy change reaches every gateway without a restart.
/// </summary>
internal sealed partial class GatewayPolicyCatalog(GatewayPolicyStore store, IOptions<GatewayOptions> options, TimeProvider time, ILogger<GatewayPolicyCatalog> logger)
    : BackgroundService, IStartupTask
{
    public const string ConfigSource = "config";
    public const string ApiSource = "api";
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _reload = new(1, 1);
    private PolicySnapshot? _current;

    public int Order => 20;

    /// <summary>The policies now in force (seeds only until the first load).</summary>
    public PolicySnapshot Current => _current ??= Build(-1, []);

    /// <summary>Wakes whoever follows the catalog (the gateway's route builder) after each change.</summary>
    public ChangeSignal Changed { get; } = new();

    public Task RunAsync(CancellationToken cancellationToken) => ReloadAsync(cancellationToken);

    /// <summary>Reads the store and installs the result, unless a newer snapshot is already installed.</summary>
    public async Task ReloadAsync(CancellationToken cancellationToken)
    {
        await _reload.WaitAsync(cancellationToken);
        try
        {
            var (index, rows) = await store.AllAsync(cancellationToken);
            if (index < Current.Index)
            {
                return;
            }
            var changed = index != Current.Index;
            _current = Build(index, rows);
            if (changed)
            {
                Changed.Notify();
            }
        }
        finally
        {
            _reload.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(PollInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    if (await store.IndexAsync(stoppingToken) != Current.Index)
                    {
                        await ReloadAsync(stoppingToken);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Keep serving the last good policies.
                    LogReloadFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private PolicySnapshot Build(long index, IReadOnlyList<StoredPolicyRow> rows)
    {
        var seeds = options.Value;
        var rateLimits = seeds.RateLimits.ToDictionary(
            r => r.Key, r => new PolicyEntry<RateLimitPolicyOptions>(r.Key, r.Value, ConfigSource, 0, null, null), StringComparer.Ordinal);
        var cors = seeds.Cors.ToDictionary(
            c => c.Key, c => new PolicyEntry<CorsPolicyOptions>(c.Key, c.Value, ConfigSource, 0, null, null), StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (row.Kind == GatewayPolicyKinds.RateLimit)
            {
                if (rateLimits.TryGetValue(row.Name, out var seeded) && seeded.Source == ConfigSource)
                {
                    LogShadowed(logger, row.Kind, row.Name);
                }
                else if (RateLimitEntry(row) is { } limit)
                {
                    rateLimits[row.Name] = limit;
                }
            }
            else if (row.Kind == GatewayPolicyKinds.Cors)
            {
                if (cors.TryGetValue(row.Name, out var seeded) && seeded.Source == ConfigSource)
                {
                    LogShadowed(logger, row.Kind, row.Name);
                }
                else if (CorsEntry(row) is { } policy)
                {
                    cors[row.Name] = policy;
                }
            }
        }
        return new PolicySnapshot(index, rateLimits, cors);
    }

    /// <summary>A stored rate-limit policy as the gateway uses it; null when its definition no longer validates.</summary>
    public static PolicyEntry<RateLimitPolicyOptions>? RateLimitEntry(StoredPolicyRow row) =>
        JsonSerializer.Deserialize<RateLimitPolicyBody>(row.Definition, JsonSerializerOptions.Web) is { } body && GatewayPolicyDefinitions.ToOptions(body, new ValidationErrors()) is { } limit
            ? new(row.Name, limit, ApiSource, row.Version, row.UpdatedBy, DateTimeOffset.FromUnixTimeMilliseconds(row.UpdatedAt))
            : null;

    /// <summary>A stored CORS policy as the gateway uses it; null when its definition no longer validates.</summary>
    public static PolicyEntry<CorsPolicyOptions>? CorsEntry(StoredPolicyRow row) =>
        JsonSerializer.Deserialize<CorsPolicyBody>(row.Definition, JsonSerializerOptions.Web) is { } body && GatewayPolicyDefinitions.ToOptions(body, new ValidationErrors()) is { } policy
            ? new(row.Name, policy, ApiSource, row.Version, row.UpdatedBy, DateTimeOffset.FromUnixTimeMilliseconds(row.UpdatedAt))
            : null;

    public override void Dispose()
    {
        _reload.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Gateway {Kind} policy {Name} is set in configuration; the stored policy of that name is ignored")]
    private static partial void LogShadowed(ILogger logger, string kind, string name);

    [LoggerMessage(Level = LogLevel.Error, Message = "Reloading gateway policies failed; the last good set stays in force")]
    private static partial void LogReloadFailed(ILogger logger, Exception exception);
}
