using System.Data.Common;
using System.Text.Json;
using Dapper;
using Fundament.Core.Watch;

namespace Fundament.Registry.Instances;

/// <summary>
/// Service instances and their status (tables <c>registry_*</c>). Every change that discovery can
/// see advances one counter in its transaction; the services list answers with that counter and a
/// service's instance list with the newest change of that service, deletions included.
/// </summary>
internal sealed class RegistryStore(IDatabase database, TimeProvider time, IOptions<RegistryOptions> options)
{
    private const string Columns = """
        id, service, environment, address, port, scheme, version, tags, metadata, routes, check_kind AS CheckKind, check_path AS CheckPath,
        check_interval_ms AS CheckIntervalMs, check_timeout_ms AS CheckTimeoutMs, ttl_ms AS TtlMs, deregister_after_ms AS DeregisterAfterMs,
        status, output, status_changed_at AS StatusChangedAt, critical_since AS CriticalSince, last_heartbeat_at AS LastHeartbeatAt,
        registered_by AS RegisteredBy, registered_at AS RegisteredAt
        """;

    public ChangeSignal Changes { get; } = new();

    /// <summary>Registers or re-registers; null when the id belongs to another service.</summary>
    public async Task<InstanceRecord?> RegisterAsync(InstanceDefinition d, string registeredBy, CancellationToken cancellationToken)
    {
        try
        {
            return await TryRegisterAsync(d, registeredBy, cancellationToken);
        }
        catch (DbException ex) when (database.Dialect.IsUniqueViolation(ex))
        {
            // Two first registrations of one id raced; the second now finds the first and updates it.
            return await TryRegisterAsync(d, registeredBy, cancellationToken);
        }
    }

    private async Task<InstanceRecord?> TryRegisterAsync(InstanceDefinition d, string registeredBy, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var ok = await database.InTransactionAsync(async (connection, transaction) =>
        {
            var existing = await connection.QuerySingleOrDefaultAsync<InstanceRecord>(database.Command($"SELECT {Columns} FROM registry_instances WHERE id = @Id{{for_update}}", new { d.Id }, transaction, cancellationToken: cancellationToken));
            if (existing is not null && existing.Service != d.Service)
            {
                return false;
            }
            var index = await NextIndexAsync(connection, transaction, d.Service, cancellationToken);
            // A TTL instance proves it is alive by registering; an HTTP-checked one is critical until its first check.
            var status = d.CheckKind switch
            {
                "ttl" => InstanceStatus.Passing,
                "none" => InstanceStatus.Passing,
                _ => existing?.Status ?? InstanceStatus.Critical,
            };
            var output = d.CheckKind == "http" && existing is null ? "waiting for the first check" : existing?.Output;
            var args = new
            {
                d.Id, d.Service, d.Environment, d.Address, d.Port, d.Scheme, d.Version,
                tags = JsonSerializer.Serialize(d.Tags), metadata = JsonSerializer.Serialize(d.Metadata), routes = d.RoutesJson,
                d.CheckKind, d.CheckPath,
                checkIntervalMs = Ms(d.CheckInterval), checkTimeoutMs = Ms(d.CheckTimeout), ttlMs = Ms(d.Ttl), deregisterAfterMs = Ms(d.DeregisterAfter),
                status, output, now, criticalSince = status == InstanceStatus.Critical ? existing?.CriticalSince ?? now : (long?)null,
                nextCheckAt = d.CheckKind == "http" ? now : (long?)null, registeredBy, index,
            };
            if (existing is null)
            {
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO registry_instances (id, service, environment, address, port, scheme, version, tags, metadata, routes, check_kind, check_path,
                        check_interval_ms, check_timeout_ms, ttl_ms, deregister_after_ms, status, output, status_changed_at, critical_since, last_heartbeat_at,
                        next_check_at, registered_by, registered_at, change_index)
                    VALUES (@Id, @Service, @Environment, @Address, @Port, @Scheme, @Version, @tags, @metadata, @routes, @CheckKind, @CheckPath,
                        @checkIntervalMs, @checkTimeoutMs, @ttlMs, @deregisterAfterMs, @status, @output, @now, @criticalSince, @now,
                        @nextCheckAt, @registeredBy, @now, @index)
                    """, args, transaction, cancellationToken: cancellationToken));
                await HistoryAsync(connection, transaction, d.Id, d.Service, null, status, "registered", now, cancellationToken, registeredBy);
            }
            else
            {
                await connection.ExecuteAsync(new CommandDefinition("""
                    UPDATE registry_instances SET environment = @Environment, address = @Address, port = @Port, scheme = @Scheme, version = @Version,
                        tags = @tags, metadata = @metadata, routes = @routes, check_kind = @CheckKind, check_path = @CheckPath,
                        check_interval_ms = @checkIntervalMs, check_timeout_ms = @checkTimeoutMs, ttl_ms = @ttlMs, deregister_after_ms = @deregisterAfterMs,
                        status = @status, output = @output, critical_since = @criticalSince, last_heartbeat_at = @now, next_check_at = @nextCheckAt,
                        lease_owner = NULL, lease_until = NULL, registered_by = @registeredBy, change_index = @index
                    WHERE id = @Id
                    """, args, transaction, cancellationToken: cancellationToken));
                if (existing.Status != status)
                {
                    await connection.ExecuteAsync(new CommandDefinition(
                        "UPDATE registry_instances SET status_changed_at = @now WHERE id = @Id", new { d.Id, now }, transaction, cancellationToken: cancellationToken));
                    await HistoryAsync(connection, transaction, d.Id, d.Service, existing.Status, status, "re-registered", now, cancellationToken, registeredBy);
                }
            }
            return true;
        }, cancellationToken);
        if (!ok)
        {
            return null;
        }
        Changes.Notify();
        return await GetAsync(d.Id, cancellationToken);
    }

    public async Task<InstanceRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<InstanceRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM registry_instances WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    public Task<bool> DeregisterAsync(string id, string reason, CancellationToken cancellationToken) =>
        DeregisterAsync(id, reason, onlyIfCriticalBefore: null, cancellationToken);

    /// <param name="onlyIfCriticalBefore">When set, remove only an instance still critical since before this time (checked under the row lock).</param>
    private async Task<bool> DeregisterAsync(string id, string reason, long? onlyIfCriticalBefore, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var removed = await database.InTransactionAsync(async (connection, transaction) =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<(string Service, string Status, long? CriticalSince, string RegisteredBy)?>(database.Command(
                "SELECT service, status, critical_since, registered_by FROM registry_instances WHERE id = @id{for_update}", new { id }, transaction, cancellationToken: cancellationToken));
            if (row is not { } r)
            {
                return false;
            }
            if (onlyIfCriticalBefore is { } cutoff && (r.Status != InstanceStatus.Critical || r.CriticalSince is not { } since || since >= cutoff))
            {
                // It recovered (or re-registered) after the reaper picked it.
                return false;
            }
            await NextIndexAsync(connection, transaction, r.Service, cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM registry_instances WHERE id = @id", new { id }, transaction, cancellationToken: cancellationToken));
            await HistoryAsync(connection, transaction, id, r.Service, r.Status, "deregistered", reason, now, cancellationToken, r.RegisteredBy);
            return true;
        }, cancellationToken);
        if (removed)
        {
            Changes.Notify();
        }
        return removed;
    }

    /// <summary>Records a heartbeat (TTL checks); false when the instance is unknown.</summary>
    public async Task<bool> HeartbeatAsync(string id, string status, string? output, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var (found, changed) = await database.InTransactionAsync(async (connection, transaction) =>
        {
            var updated = await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE registry_instances SET last_heartbeat_at = @now WHERE id = @id", new { id, now }, transaction, cancellationToken: cancellationToken));
            if (updated == 0)
            {
                return (false, false);
            }
            return (true, await SetStatusAsync(connection, transaction, id, status, output, now, cancellationToken));
        }, cancellationToken);
        if (changed)
        {
            Changes.Notify();
        }
        return found;
    }

    public async Task<IReadOnlyList<ServiceSummary>> ServicesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Service, string Status, long Count)>(new CommandDefinition(
            "SELECT service, status, COUNT(*) FROM registry_instances GROUP BY service, status ORDER BY service", cancellationToken: cancellationToken));
        return Summaries(rows);
    }

    /// <summary>
    /// One page of the services list: the services after <paramref name="after"/> by name, at most
    /// <paramref name="take"/> of them, each with its instances counted by status.
    /// </summary>
    public async Task<IReadOnlyList<ServiceSummary>> ServicesPageAsync(string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Service, string Status, long Count)>(new CommandDefinition("""
            SELECT service, status, COUNT(*) FROM registry_instances
            WHERE service IN (SELECT DISTINCT service FROM registry_instances WHERE (@after IS NULL OR service > @after) ORDER BY service LIMIT @take)
            GROUP BY service, status ORDER BY service
            """, new { after, take }, cancellationToken: cancellationToken));
        return Summaries(rows);
    }

    private static List<ServiceSummary> Summaries(IEnumerable<(string Service, string Status, long Count)> rows) =>
        rows.GroupBy(r => r.Service, StringComparer.Ordinal).Select(g =>
        {
            int Count(string status) => (int)g.Where(r => r.Status == status).Sum(r => r.Count);
            return new ServiceSummary(g.Key, Count(InstanceStatus.Passing), Count(InstanceStatus.Warning), Count(InstanceStatus.Critical), (int)g.Sum(r => r.Count));
        }).ToList();

    /// <summary>
    /// One page of a service's instances by id, after <paramref name="after"/>, at most
    /// <paramref name="take"/>; <paramref name="passingOnly"/> and <paramref name="tag"/> filter in the query.
    /// </summary>
    public async Task<IReadOnlyList<InstanceRecord>> InstancesPageAsync(string service, bool passingOnly, string? tag, string? after, int take, CancellationToken cancellationToken)
    {
        var filters = (passingOnly ? " AND status = @passing" : "") + (tag is null ? "" : " AND " + database.Dialect.JsonArrayContains("tags", "tag"));
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<InstanceRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM registry_instances WHERE service = @service{filters} AND (@after IS NULL OR id > @after) ORDER BY id LIMIT @take",
            new { service, passing = InstanceStatus.Passing, tag, after, take }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task<IReadOnlyList<InstanceRecord>> InstancesAsync(string service, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<InstanceRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM registry_instances WHERE service = @service ORDER BY id", new { service }, cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>Every instance (for the monitor's metrics and the alert rules).</summary>
    public async Task<IReadOnlyList<InstanceRecord>> AllAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<InstanceRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM registry_instances", cancellationToken: cancellationToken))).ToList();
    }

    public async Task<IReadOnlyList<StatusChange>> HistoryAsync(string instanceId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(long At, string? From, string To, string? Output)>(new CommandDefinition(
            "SELECT at, from_status, to_status, output FROM registry_status_history WHERE instance_id = @instanceId ORDER BY at DESC, id DESC LIMIT 500",
            new { instanceId }, cancellationToken: cancellationToken));
        return rows.Select(r => new StatusChange(DateTimeOffset.FromUnixTimeMilliseconds(r.At), r.From, r.To, r.Output)).ToList();
    }

    public async Task<long> GlobalIndexAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT value FROM registry_index WHERE id = 1", cancellationToken: cancellationToken));
    }

    public async Task<long> ServiceIndexAsync(string service, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT change_index FROM registry_service_index WHERE service = @service", new { service }, cancellationToken: cancellationToken)) ?? 0;
    }

    public async Task<bool> IsGrantedAsync(string clientId, string service, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM registry_grants WHERE client_id = @clientId AND service = @service", new { clientId, service }, cancellationToken: cancellationToken)) > 0;
    }

    public async Task AddGrantAsync(string clientId, string service, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO registry_grants (client_id, service, created_at) VALUES (@clientId, @service, @now) ON CONFLICT (client_id, service) DO NOTHING",
            new { clientId, service, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
    }

    public async Task<bool> RemoveGrantAsync(string clientId, string service, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM registry_grants WHERE client_id = @clientId AND service = @service", new { clientId, service }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>
    /// One page of grants by client id, then service, after the cursor of <see cref="GrantCursor"/>;
    /// at most <paramref name="take"/>.
    /// </summary>
    public async Task<IReadOnlyList<GrantRequest>> GrantsAsync(string? after, int take, CancellationToken cancellationToken)
    {
        var cursor = after is null ? null : Paging.Split(after, 2);
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<(string ClientId, string Service)>(new CommandDefinition("""
            SELECT client_id, service FROM registry_grants
            WHERE (@afterClient IS NULL OR (client_id, service) > (@afterClient, @afterService))
            ORDER BY client_id, service LIMIT @take
            """, new { afterService = cursor?[0], afterClient = cursor?[1], take }, cancellationToken: cancellationToken)))
            .Select(g => new GrantRequest(g.ClientId, g.Service)).ToList();
    }

    /// <summary>The paging cursor of a grant: the service (never a space in it), then the client id.</summary>
    public static string GrantCursor(GrantRequest grant) => Paging.Compose(grant.Service!, grant.ClientId!);

    /// <summary>
    /// Claims due HTTP checks for this replica: a lease per instance, taken with SKIP LOCKED on
    /// PostgreSQL so replicas split the work and each instance is checked by one of them.
    /// </summary>
    public async Task<IReadOnlyList<CheckWork>> ClaimDueChecksAsync(string owner, int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return await database.InTransactionAsync(async (connection, transaction) =>
            (await connection.QueryAsync<CheckWork>(database.Command("""
                UPDATE registry_instances SET lease_owner = @owner, lease_until = @now + COALESCE(check_timeout_ms, 0) + 5000
                WHERE id IN (
                    SELECT id FROM registry_instances
                    WHERE check_kind = 'http' AND next_check_at <= @now AND (lease_until IS NULL OR lease_until < @now)
                    ORDER BY next_check_at LIMIT @limit{skip_locked})
                RETURNING id, service, scheme, address, port, check_path AS CheckPath, check_timeout_ms AS CheckTimeoutMs
                """, new { owner, now, limit }, transaction, cancellationToken: cancellationToken))).ToList(), cancellationToken);
    }

    /// <summary>Records a check result and schedules the next one (interval with ±10% jitter, so checks do not march in step).</summary>
    public async Task CompleteCheckAsync(string id, string owner, string status, string output, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var changed = await database.InTransactionAsync(async (connection, transaction) =>
        {
            var interval = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                "SELECT check_interval_ms FROM registry_instances WHERE id = @id AND lease_owner = @owner", new { id, owner }, transaction, cancellationToken: cancellationToken));
            if (interval is not { } ms)
            {
                // Deregistered meanwhile, or the lease lapsed and another replica took it.
                return false;
            }
            var jitter = (long)(ms * (Random.Shared.NextDouble() * 0.2 - 0.1));
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE registry_instances SET next_check_at = @next, lease_owner = NULL, lease_until = NULL WHERE id = @id",
                new { id, next = now + ms + jitter }, transaction, cancellationToken: cancellationToken));
            return await SetStatusAsync(connection, transaction, id, status, output, now, cancellationToken);
        }, cancellationToken);
        if (changed)
        {
            Changes.Notify();
        }
    }

    /// <summary>Marks critical every TTL instance whose last heartbeat is older than its TTL.</summary>
    public async Task<int> ExpireTtlsAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var count = await database.InTransactionAsync(async (connection, transaction) =>
        {
            var lapsed = (await connection.QueryAsync<string>(new CommandDefinition(
                "SELECT id FROM registry_instances WHERE check_kind = 'ttl' AND status <> 'critical' AND last_heartbeat_at + ttl_ms < @now",
                new { now }, transaction, cancellationToken: cancellationToken))).ToList();
            foreach (var id in lapsed)
            {
                await SetStatusAsync(connection, transaction, id, InstanceStatus.Critical, "TTL expired: no heartbeat in time", now, cancellationToken);
            }
            return lapsed.Count;
        }, cancellationToken);
        if (count > 0)
        {
            Changes.Notify();
        }
        return count;
    }

    /// <summary>Removes instances critical for longer than their deregisterAfter.</summary>
    public async Task<IReadOnlyList<string>> ReapAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var fallback = options.Value.DefaultDeregisterAfter is { } d ? (long?)d.TotalMilliseconds : null;
        await using var connection = await database.OpenAsync(cancellationToken);
        var due = (await connection.QueryAsync<(string Id, long Cutoff)>(new CommandDefinition("""
            SELECT id, @now - COALESCE(deregister_after_ms, @fallback) FROM registry_instances
            WHERE status = 'critical' AND critical_since IS NOT NULL AND COALESCE(deregister_after_ms, @fallback) IS NOT NULL
              AND critical_since + COALESCE(deregister_after_ms, @fallback) < @now
            """, new { now, fallback }, cancellationToken: cancellationToken))).ToList();
        var removed = new List<string>();
        foreach (var (id, cutoff) in due)
        {
            if (await DeregisterAsync(id, "critical longer than deregisterAfter", cutoff, cancellationToken))
            {
                removed.Add(id);
            }
        }
        // The history of instances gone for a week goes too (new instance ids appear on every deploy).
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM registry_status_history WHERE at < @before AND published = 1 AND instance_id NOT IN (SELECT id FROM registry_instances)",
            new { before = now - (long)TimeSpan.FromDays(7).TotalMilliseconds }, cancellationToken: cancellationToken));
        return removed;
    }

    /// <returns>True when the status changed; the caller wakes watchers once its transaction has committed.</returns>
    private async Task<bool> SetStatusAsync(DbConnection connection, DbTransaction transaction, string id, string status, string? output, long now, CancellationToken cancellationToken)
    {
        var current = await connection.QuerySingleOrDefaultAsync<(string Service, string Status, string RegisteredBy)?>(new CommandDefinition(
            "SELECT service, status, registered_by FROM registry_instances WHERE id = @id", new { id }, transaction, cancellationToken: cancellationToken));
        if (current is not { } c)
        {
            return false;
        }
        if (c.Status == status)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE registry_instances SET output = @output WHERE id = @id", new { id, output = Truncate(output) }, transaction, cancellationToken: cancellationToken));
            return false;
        }
        var index = await NextIndexAsync(connection, transaction, c.Service, cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE registry_instances SET status = @status, output = @output, status_changed_at = @now, change_index = @index,
                critical_since = CASE WHEN @status = 'critical' THEN COALESCE(critical_since, @now) ELSE NULL END
            WHERE id = @id
            """, new { id, status, output = Truncate(output), now, index }, transaction, cancellationToken: cancellationToken));
        await HistoryAsync(connection, transaction, id, c.Service, c.Status, status, output, now, cancellationToken, c.RegisteredBy);
        return true;
    }

    /// <summary>A status change into the history, which is also the outbox of its domain event (published later by <see cref="RegistryEventPublisher"/>).</summary>
    private async Task HistoryAsync(DbConnection connection, DbTransaction transaction, string instanceId, string service, string? from, string to, string? output, long now,
        CancellationToken cancellationToken, string audience)
    {
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO registry_status_history (id, instance_id, service, at, from_status, to_status, output, published, audience)
            VALUES (@id, @instanceId, @service, @now, @from, @to, @output, 0, @audience)
            """, new { id = Guid.CreateVersion7().ToString(), instanceId, service, now, from, to, output = Truncate(output), audience }, transaction, cancellationToken: cancellationToken));
        // Trimmed to the newest rows, but never a change whose event is not out yet.
        await connection.ExecuteAsync(new CommandDefinition("""
            DELETE FROM registry_status_history WHERE instance_id = @instanceId AND published = 1 AND id NOT IN (
                SELECT id FROM registry_status_history WHERE instance_id = @instanceId ORDER BY at DESC, id DESC LIMIT @keep)
            """, new { instanceId, keep = options.Value.HistoryPerInstance }, transaction, cancellationToken: cancellationToken));
    }

    /// <summary>Status changes whose domain event is not published yet, oldest first.</summary>
    public async Task<IReadOnlyList<UnpublishedChange>> UnpublishedAsync(int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<UnpublishedChange>(new CommandDefinition("""
            SELECT id AS Id, instance_id AS InstanceId, service AS Service, at AS At, from_status AS FromStatus, to_status AS ToStatus, output AS Output, audience AS Audience
            FROM registry_status_history WHERE published = 0 ORDER BY at, id LIMIT @take
            """, new { take }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task MarkPublishedAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("UPDATE registry_status_history SET published = 1 WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    internal static async Task<long> NextIndexAsync(DbConnection connection, DbTransaction transaction, string service, CancellationToken cancellationToken)
    {
        var index = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "UPDATE registry_index SET value = value + 1 WHERE id = 1 RETURNING value", transaction: transaction, cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO registry_service_index (service, change_index) VALUES (@service, @index)
            ON CONFLICT (service) DO UPDATE SET change_index = excluded.change_index
            """, new { service, index }, transaction, cancellationToken: cancellationToken));
        return index;
    }

    private static long? Ms(TimeSpan? value) => value is { } v ? (long)v.TotalMilliseconds : null;

    private static string? Truncate(string? value) => value is { Length: > 500 } ? value[..500] : value;
}
