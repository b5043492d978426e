using System.Data.Common;
using System.Text.Json;
using Dapper;
using Fundament.Core.Watch;
using ZiggyCreatures.Caching.Fusion;

namespace Fundament.Config;

/// <summary>
/// Configuration entries, their history and the change index (tables <c>config_*</c>). Every
/// change takes the next value of one counter in its transaction, so the index of a resolved view
/// (the newest change in its scopes) only ever grows, deletes included. Resolved views are read
/// through the platform cache (memory, plus Redis and its backplane when configured): a change
/// evicts the views it touches on this node at once and on every other through the backplane;
/// without one, other replicas follow within <see cref="CacheFor"/>. Watches read uncached.
/// </summary>
internal sealed class ConfigStore(IDatabase database, TimeProvider time, IOptions<ConfigOptions> options, IFusionCache cache)
{
    /// <summary>The longest a change takes to reach another replica's resolved views when the backplane is down or absent.</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);

    private const string AllTag = "config";

    public ChangeSignal Changes { get; } = new();

    private FusionCacheEntryOptions Entry => _entry ??= cache.DefaultEntryOptions.Duplicate().SetDuration(CacheFor);

    private FusionCacheEntryOptions? _entry;

    /// <summary>The resolved view, from the cache (fail-safe: served stale while the database is away, counted in fundament_cache_fail_safe_total).</summary>
    public async Task<ResolvedConfig> ResolveCachedAsync(string service, string environment, CancellationToken cancellationToken) =>
        // Inside a unit of work the read sees its uncommitted changes: never cached for everyone.
        UnitOfWork.Current is not null ? await ResolveAsync(service, environment, cancellationToken) : await cache.GetOrSetAsync<ResolvedConfig>($"config:resolved:{service}\n{environment}", async (_, ct) => await ResolveAsync(service, environment, ct),
            options: Entry, tags: [AllTag, ServiceTag(service)], token: cancellationToken);

    private static string ServiceTag(string service) => $"config:service:{service}";

    /// <summary>Evicts the resolved views a change in (<paramref name="service"/>, any environment) touches: one service's, or every one for '*'.</summary>
    /// <remarks>
    /// A read on another node that loaded the old values before the commit and stored them after this
    /// eviction keeps them for up to <see cref="CacheFor"/>: the bound in that race is 5 s, not the
    /// backplane's latency.
    /// </remarks>
    private static void Forget(IFusionCache cache, string service) =>
        // Evicted from this node's memory before this returns; Redis and the backplane follow in the background.
        cache.RemoveByTag(service == "*" ? AllTag : ServiceTag(service),
            new FusionCacheEntryOptions { AllowBackgroundDistributedCacheOperations = true, AllowBackgroundBackplaneOperations = true });

    public async Task<ConfigEntryResponse> SetAsync(string service, string environment, string key, string valueJson, string change, string actor, CancellationToken cancellationToken)
    {
        var result = await database.InTransactionAsync(async (connection, transaction) =>
        {
            var (index, version, now) = await NextChangeAsync(connection, transaction, service, environment, key, cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO config_entries (service, environment, key, value, version, change_index, updated_at, updated_by)
                VALUES (@service, @environment, @key, @value, @version, @index, @now, @actor)
                ON CONFLICT (service, environment, key) DO UPDATE SET value = excluded.value, version = excluded.version,
                    change_index = excluded.change_index, updated_at = excluded.updated_at, updated_by = excluded.updated_by
                """, new { service, environment, key, value = valueJson, version, index, now, actor }, transaction, cancellationToken: cancellationToken));
            await RecordAsync(connection, transaction, service, environment, key, version, valueJson, change, index, now, actor, cancellationToken);
            return new ConfigEntryResponse(service, environment, key, Parse(valueJson), version, index, DateTimeOffset.FromUnixTimeMilliseconds(now), actor);
        }, cancellationToken);
        // Once the change has committed (the caller's unit of work may still be open).
        UnitOfWork.AfterCommit(() => Forget(cache, service));
        Changes.Notify();
        return result;
    }

    /// <returns>False when there was no such entry.</returns>
    public async Task<bool> DeleteAsync(string service, string environment, string key, string actor, CancellationToken cancellationToken)
    {
        var deleted = await database.InTransactionAsync(async (connection, transaction) =>
        {
            var exists = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM config_entries WHERE service = @service AND environment = @environment AND key = @key",
                new { service, environment, key }, transaction, cancellationToken: cancellationToken));
            if (exists == 0)
            {
                return false;
            }
            var (index, version, now) = await NextChangeAsync(connection, transaction, service, environment, key, cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM config_entries WHERE service = @service AND environment = @environment AND key = @key",
                new { service, environment, key }, transaction, cancellationToken: cancellationToken));
            await RecordAsync(connection, transaction, service, environment, key, version, null, "delete", index, now, actor, cancellationToken);
            return true;
        }, cancellationToken);
        if (deleted)
        {
            UnitOfWork.AfterCommit(() => Forget(cache, service));
            Changes.Notify();
        }
        return deleted;
    }

    public async Task<ConfigHistoryEntry?> HistoryVersionAsync(string service, string environment, string key, int version, CancellationToken cancellationToken) =>
        (await HistoryAsync(service, environment, key, cancellationToken)).FirstOrDefault(h => h.Version == version);

    public Task<IReadOnlyList<ConfigHistoryEntry>> HistoryAsync(string service, string environment, string key, CancellationToken cancellationToken) =>
        HistoryAsync(service, environment, key, null, null, cancellationToken);

    /// <summary>
    /// The key's versions, newest first: those before version <paramref name="before"/>, at most
    /// <paramref name="take"/> (all for null).
    /// </summary>
    public async Task<IReadOnlyList<ConfigHistoryEntry>> HistoryAsync(string service, string environment, string key, long? before, int? take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<HistoryRow>(new CommandDefinition($"""
            SELECT version, value, change, change_index AS ChangeIndex, changed_at AS ChangedAt, changed_by AS ChangedBy
            FROM config_history WHERE service = @service AND environment = @environment AND key = @key AND (@before IS NULL OR version < @before)
            ORDER BY version DESC{(take is null ? "" : " LIMIT @take")}
            """, new { service, environment, key, before, take }, cancellationToken: cancellationToken));
        return rows.Select(r => new ConfigHistoryEntry((int)r.Version, r.Value is null ? null : Parse(r.Value), r.Change, r.ChangeIndex,
            DateTimeOffset.FromUnixTimeMilliseconds(r.ChangedAt), r.ChangedBy)).ToList();
    }

    /// <summary>
    /// One page of entries by (service, environment, key), after the cursor of <see cref="EntryCursor"/>;
    /// at most <paramref name="take"/>.
    /// </summary>
    public async Task<IReadOnlyList<ConfigEntryResponse>> ListAsync(string? service, string? environment, string? prefix, string? after, int take, CancellationToken cancellationToken)
    {
        var cursor = after is null ? null : Paging.Split(after, 3);
        await using var connection = await database.OpenAsync(cancellationToken);

        var rows = await connection.QueryAsync<EntryRow>(new CommandDefinition("""
            SELECT service, environment, key, value, version, change_index AS ChangeIndex, updated_at AS UpdatedAt, updated_by AS UpdatedBy
            FROM config_entries
            WHERE (@service IS NULL OR service = @service) AND (@environment IS NULL OR environment = @environment)
              AND (@prefix IS NULL OR substr(key, 1, @length) = @prefix)
              AND (@afterService IS NULL OR (service, environment, key) > (@afterService, @afterEnvironment, @afterKey))
            ORDER BY service, environment, key LIMIT @take
            """, new { service, environment, prefix, length = prefix?.Length ?? 0, afterService = cursor?[0], afterEnvironment = cursor?[1], afterKey = cursor?[2], take },
            cancellationToken: cancellationToken));
        return rows.Select(r => r.ToResponse()).ToList();
    }

    /// <summary>The paging cursor of an entry: service, environment and key (never a space in any of them).</summary>
    public static string EntryCursor(ConfigEntryResponse entry) => Paging.Compose(entry.Service, entry.Environment, entry.Key);

    /// <summary>The overlay for one service in one environment, and the index it reflects.</summary>
    public async Task<ResolvedConfig> ResolveAsync(string service, string environment, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // Index first: a change landing between the two reads shows newer values under an older
        // index, and the client's next watch then answers at once. Never the other way round.
        var index = await IndexAsync(connection, null, service, environment, cancellationToken);
        var rows = await connection.QueryAsync<(string Service, string Environment, string Key, string Value)>(new CommandDefinition("""
            SELECT service, environment, key, value FROM config_entries
            WHERE service IN (@service, '*') AND environment IN (@environment, '*')
            """, new { service, environment }, cancellationToken: cancellationToken));
        var values = new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var row in rows.OrderBy(r => ConfigScope.Precedence(r.Service, r.Environment)))
        {
            values[row.Key] = Parse(row.Value);
        }
        return new ResolvedConfig(index, values);
    }

    public async Task<long> IndexAsync(string service, string environment, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await IndexAsync(connection, null, service, environment, cancellationToken);
    }

    public async Task SetSchemaAsync(string keyPrefix, string schemaJson, string actor, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO config_schemas (key_prefix, schema, updated_at, updated_by) VALUES (@keyPrefix, @schemaJson, @now, @actor)
            ON CONFLICT (key_prefix) DO UPDATE SET schema = excluded.schema, updated_at = excluded.updated_at, updated_by = excluded.updated_by
            """, new { keyPrefix, schemaJson, now = time.GetUtcNow().ToUnixTimeMilliseconds(), actor }, cancellationToken: cancellationToken));
    }

    public Task<IReadOnlyList<ConfigSchemaResponse>> ListSchemasAsync(CancellationToken cancellationToken) => ListSchemasAsync(null, null, cancellationToken);

    /// <summary>Schemas by key prefix, after <paramref name="after"/>; at most <paramref name="take"/> (all for null).</summary>
    public async Task<IReadOnlyList<ConfigSchemaResponse>> ListSchemasAsync(string? after, int? take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string KeyPrefix, string Schema, long UpdatedAt, string UpdatedBy)>(new CommandDefinition(
            $"SELECT key_prefix, schema, updated_at, updated_by FROM config_schemas WHERE (@after IS NULL OR key_prefix > @after) ORDER BY key_prefix{(take is null ? "" : " LIMIT @take")}",
            new { after, take }, cancellationToken: cancellationToken));
        return rows.Select(r => new ConfigSchemaResponse(r.KeyPrefix, Parse(r.Schema), DateTimeOffset.FromUnixTimeMilliseconds(r.UpdatedAt), r.UpdatedBy)).ToList();
    }

    public async Task<bool> DeleteSchemaAsync(string keyPrefix, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM config_schemas WHERE key_prefix = @keyPrefix", new { keyPrefix }, cancellationToken: cancellationToken)) == 1;
    }

    private static async Task<long> IndexAsync(DbConnection connection, DbTransaction? transaction, string service, string environment, CancellationToken cancellationToken) =>
        await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT MAX(change_index) FROM config_history WHERE service IN (@service, '*') AND environment IN (@environment, '*')",
            new { service, environment }, transaction, cancellationToken: cancellationToken)) ?? 0;

    private async Task<(long Index, int Version, long Now)> NextChangeAsync(DbConnection connection, DbTransaction transaction, string service, string environment, string key, CancellationToken cancellationToken)
    {
        // The counter row serializes writers across replicas; its value orders every change.
        var index = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "UPDATE config_index SET value = value + 1 WHERE id = 1 RETURNING value", transaction: transaction, cancellationToken: cancellationToken));
        var last = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT MAX(version) FROM config_history WHERE service = @service AND environment = @environment AND key = @key",
            new { service, environment, key }, transaction, cancellationToken: cancellationToken)) ?? 0;
        return (index, (int)last + 1, time.GetUtcNow().ToUnixTimeMilliseconds());
    }

    private async Task RecordAsync(DbConnection connection, DbTransaction transaction, string service, string environment, string key, int version, string? value, string change, long index, long now, string actor, CancellationToken cancellationToken)
    {
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO config_history (service, environment, key, version, value, change, change_index, changed_at, changed_by)
            VALUES (@service, @environment, @key, @version, @value, @change, @index, @now, @actor)
            """, new { service, environment, key, version, value, change, index, now, actor }, transaction, cancellationToken: cancellationToken));
        // Keep the newest versions; the one just written always stays, so the scope's index never goes back.
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM config_history WHERE service = @service AND environment = @environment AND key = @key AND version <= @cutoff",
            new { service, environment, key, cutoff = version - options.Value.HistoryPerKey }, transaction, cancellationToken: cancellationToken));
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private sealed class EntryRow
    {
        public string Service { get; init; } = "";
        public string Environment { get; init; } = "";
        public string Key { get; init; } = "";
        public string Value { get; init; } = "null";
        public long Version { get; init; }
        public long ChangeIndex { get; init; }
        public long UpdatedAt { get; init; }
        public string UpdatedBy { get; init; } = "";

        public ConfigEntryResponse ToResponse() => new(Service, Environment, Key, Parse(Value), (int)Version, ChangeIndex, DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt), UpdatedBy);
    }

    private sealed class HistoryRow
    {
        public long Version { get; init; }
        public string? Value { get; init; }
        public string Change { get; init; } = "";
        public long ChangeIndex { get; init; }
        public long ChangedAt { get; init; }
        public string ChangedBy { get; init; } = "";
    }
}

/// <summary>Answer of <c>GET /api/v1/config/resolved</c>.</summary>
public sealed record ResolvedConfig(long Index, IReadOnlyDictionary<string, JsonElement> Values);

/// <summary>One configuration entry.</summary>
public sealed record ConfigEntryResponse(string Service, string Environment, string Key, JsonElement Value, int Version, long Index, DateTimeOffset UpdatedAt, string UpdatedBy);

/// <summary>One version of a key; <see cref="Value"/> is null where the key was deleted.</summary>
public sealed record ConfigHistoryEntry(int Version, JsonElement? Value, string Change, long Index, DateTimeOffset ChangedAt, string ChangedBy);

public sealed record ConfigSchemaResponse(string KeyPrefix, JsonElement Schema, DateTimeOffset UpdatedAt, string UpdatedBy);
