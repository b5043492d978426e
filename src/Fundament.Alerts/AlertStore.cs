using System.Text;
using Dapper;
using Fundament.Core.Keys;

namespace Fundament.Alerts;

/// <summary>Rules, channels and alerts (tables <c>alert_*</c>, <c>alerts</c>).</summary>
internal sealed class AlertStore(IDatabase database, EnvelopeEncryption encryption, AlertConditions conditions, TimeProvider time) : IStartupTask, IEnvelopeHolder
{
    public int Order => 20;

    public string Name => "alert channel secrets";

    private static byte[] Aad(string id) => Encoding.UTF8.GetBytes("fundament:alerts:channel:" + id);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        // The built-in rules: on by default, adjustable, not deletable.
        foreach (var (kind, rule) in conditions.Kinds.Where(k => k.BuiltIn is not null).Select(k => (k.Kind, k.BuiltIn!)))
        {
            // Only inserted once: an operator's adjustments survive upgrades.
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO alert_rules (id, kind, name, enabled, for_ms, severity, service, builtin, created_at, updated_at)
                VALUES (@Id, @Kind, @Name, TRUE, @forMs, @Severity, NULL, TRUE, @now, @now) ON CONFLICT (id) DO NOTHING
                """, new { rule.Id, Kind = kind, rule.Name, forMs = (long)rule.For.TotalMilliseconds, rule.Severity, now }, cancellationToken: cancellationToken));
        }
    }

    public async Task<IReadOnlyList<RuleRow>> RulesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<RuleRow>(new CommandDefinition(
            "SELECT id, kind, name, enabled, for_ms AS ForMs, severity, service, builtin, updated_at AS UpdatedAt FROM alert_rules ORDER BY builtin DESC, id",
            cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>One page of rules by id, after <paramref name="after"/>; at most <paramref name="take"/>.</summary>
    public async Task<IReadOnlyList<RuleRow>> RulesAsync(string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<RuleRow>(new CommandDefinition(
            "SELECT id, kind, name, enabled, for_ms AS ForMs, severity, service, builtin, updated_at AS UpdatedAt FROM alert_rules WHERE (@after IS NULL OR id > @after) ORDER BY id LIMIT @take",
            new { after, take }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task<RuleRow> CreateRuleAsync(string kind, string name, bool enabled, TimeSpan forDuration, string severity, string? service, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7().ToString();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO alert_rules (id, kind, name, enabled, for_ms, severity, service, builtin, created_at, updated_at)
            VALUES (@id, @kind, @name, @enabled, @forMs, @severity, @service, FALSE, @now, @now)
            """, new { id, kind, name, enabled, forMs = (long)forDuration.TotalMilliseconds, severity, service, now }, cancellationToken: cancellationToken));
        return (await RulesAsync(cancellationToken)).Single(r => r.Id == id);
    }

    public async Task<bool> UpdateRuleAsync(string id, string? name, bool? enabled, TimeSpan? forDuration, string? severity, string? service, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE alert_rules SET name = COALESCE(@name, name), enabled = COALESCE(@enabled, enabled), for_ms = COALESCE(@forMs, for_ms),
                severity = COALESCE(@severity, severity), service = COALESCE(@service, service), updated_at = @now
            WHERE id = @id
            """, new { id, name, enabled, forMs = forDuration is { } f ? (long?)f.TotalMilliseconds : null, severity, service, now = time.GetUtcNow().ToUnixTimeMilliseconds() },
            cancellationToken: cancellationToken)) == 1;
    }

    public async Task<bool> DeleteRuleAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM alert_rules WHERE id = @id AND builtin = FALSE", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task<AlertChannelResponse?> CreateChannelAsync(string name, string kind, string target, string? secret, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7().ToString();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        try
        {
            await database.InTransactionAsync((connection, transaction) => connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO alert_channels (id, name, kind, target, secret, enabled, created_at) VALUES (@id, @name, @kind, @target, @sealedSecret, TRUE, @now)",
                new { id, name, kind, target, sealedSecret = secret is null ? null : encryption.Encrypt(Encoding.UTF8.GetBytes(secret), Aad(id)), now },
                transaction, cancellationToken: cancellationToken)), cancellationToken);
        }
        catch (System.Data.Common.DbException ex) when (database.Dialect.IsUniqueViolation(ex))
        {
            return null;
        }
        return new AlertChannelResponse(id, name, kind, DisplayTarget(kind, target), true, secret is not null, DateTimeOffset.FromUnixTimeMilliseconds(now));
    }

    private static string DisplayTarget(string kind, string target) => Fundament.Delivery.DeliveryKind.Display(kind, target);

    public async Task<IReadOnlyList<ChannelRow>> ChannelsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<ChannelRow>(new CommandDefinition(
            "SELECT id, name, kind, target, secret, enabled, created_at AS CreatedAt FROM alert_channels ORDER BY name", cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>One page of channels by name, after <paramref name="after"/>; at most <paramref name="take"/>.</summary>
    public async Task<IReadOnlyList<ChannelRow>> ChannelsAsync(string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<ChannelRow>(new CommandDefinition(
            "SELECT id, name, kind, target, secret, enabled, created_at AS CreatedAt FROM alert_channels WHERE (@after IS NULL OR name > @after) ORDER BY name LIMIT @take",
            new { after, take }, cancellationToken: cancellationToken))).ToList();
    }

    public string? SecretOf(ChannelRow channel) =>
        channel.Secret is null ? null : Encoding.UTF8.GetString(encryption.Decrypt(channel.Secret, Aad(channel.Id)));

    public async Task<bool> DeleteChannelAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM alert_channels WHERE id = @id", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task<IReadOnlyList<AlertRow>> OpenAlertsAsync(CancellationToken cancellationToken) =>
        await AlertsAsync("state <> 'resolved'", null, 100_000, cancellationToken);

    public async Task<IReadOnlyList<AlertRow>> AlertsAsync(string? state, int limit, CancellationToken cancellationToken) =>
        await AlertsAsync(state is null ? "1 = 1" : "state = @state", state, limit, cancellationToken);

    private async Task<IReadOnlyList<AlertRow>> AlertsAsync(string where, string? state, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<AlertRow>(new CommandDefinition($"""
            SELECT id, rule_id AS RuleId, fingerprint, subject, state, severity, summary, started_at AS StartedAt, fired_at AS FiredAt,
                   resolved_at AS ResolvedAt, notified_state AS NotifiedState
            FROM alerts WHERE {where} ORDER BY updated_at DESC LIMIT @limit
            """, new { state, limit }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task OpenAsync(string ruleId, string fingerprint, string subject, string severity, string summary, DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        try
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO alerts (id, rule_id, fingerprint, subject, state, severity, summary, started_at, updated_at)
                VALUES (@id, @ruleId, @fingerprint, @subject, 'pending', @severity, @summary, @startedAt, @now)
                """, new { id = Guid.CreateVersion7().ToString(), ruleId, fingerprint, subject, severity, summary, startedAt = startedAt.ToUnixTimeMilliseconds(), now = time.GetUtcNow().ToUnixTimeMilliseconds() },
                cancellationToken: cancellationToken));
        }
        catch (System.Data.Common.DbException ex) when (database.Dialect.IsUniqueViolation(ex))
        {
            // Already open: evaluated concurrently by a replica that held the lease a moment ago.
        }
    }

    public async Task TransitionAsync(string id, string state, string summary, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE alerts SET state = @state, summary = @summary, updated_at = @now,
                fired_at = CASE WHEN @state = 'firing' THEN @now ELSE fired_at END,
                resolved_at = CASE WHEN @state = 'resolved' THEN @now ELSE resolved_at END
            WHERE id = @id
            """, new { id, state, summary, now }, cancellationToken: cancellationToken));
    }

    /// <summary>Alerts whose current state has not been sent to the channels yet (the outbox).</summary>
    /// <summary>Alerts whose firing or resolution has not reached their channels yet.</summary>
    public Task<IReadOnlyList<AlertRow>> UnnotifiedAsync(CancellationToken cancellationToken) => BehindAsync("notified_state", cancellationToken);

    /// <summary>Alerts whose firing or resolution is not yet published as a domain event.</summary>
    public Task<IReadOnlyList<AlertRow>> UnannouncedAsync(CancellationToken cancellationToken) => BehindAsync("event_state", cancellationToken);

    /// <summary>Alerts that fired, or resolved after firing, since <paramref name="column"/> (a constant: notified_state or event_state) last recorded it.</summary>
    private async Task<IReadOnlyList<AlertRow>> BehindAsync(string column, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<AlertRow>(new CommandDefinition($"""
            SELECT id, rule_id AS RuleId, fingerprint, subject, state, severity, summary, started_at AS StartedAt, fired_at AS FiredAt,
                   resolved_at AS ResolvedAt, notified_state AS NotifiedState
            FROM alerts
            WHERE (state = 'firing' AND ({column} IS NULL OR {column} <> 'firing'))
               OR (state = 'resolved' AND {column} = 'firing')
            """, cancellationToken: cancellationToken))).ToList();
    }

    public async Task MarkAnnouncedAsync(string id, string state, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE alerts SET event_state = @state WHERE id = @id", new { id, state }, cancellationToken: cancellationToken));
    }

    public async Task MarkNotifiedAsync(string id, string state, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE alerts SET notified_state = @state WHERE id = @id", new { id, state }, cancellationToken: cancellationToken));
    }

    public Task<RewrapResult> RewrapAsync(EnvelopeEncryption current, CancellationToken cancellationToken) =>
        EnvelopeColumn.RewrapAsync(database, current, "alert_channels", ["id"], "secret", null, cancellationToken);

    internal sealed class RuleRow
    {
        public string Id { get; init; } = "";
        public string Kind { get; init; } = "";
        public string Name { get; init; } = "";
        public bool Enabled { get; init; }
        public long ForMs { get; init; }
        public string Severity { get; init; } = "";
        public string? Service { get; init; }
        public bool Builtin { get; init; }
        public long UpdatedAt { get; init; }

        public AlertRuleResponse ToResponse() => new(Id, Kind, Name, Enabled, Durations.Format(TimeSpan.FromMilliseconds(ForMs)), Severity, Service, Builtin,
            DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt));
    }

    internal sealed class ChannelRow
    {
        public string Id { get; init; } = "";
        public string Name { get; init; } = "";
        public string Kind { get; init; } = "";
        public string Target { get; init; } = "";
        public byte[]? Secret { get; init; }
        public bool Enabled { get; init; }
        public long CreatedAt { get; init; }

        public AlertChannelResponse ToResponse() => new(Id, Name, Kind, DisplayTarget(Kind, Target), Enabled, Secret is not null, DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt));
    }

    internal sealed class AlertRow
    {
        public string Id { get; init; } = "";
        public string RuleId { get; init; } = "";
        public string Fingerprint { get; init; } = "";
        public string Subject { get; init; } = "";
        public string State { get; init; } = "";
        public string Severity { get; init; } = "";
        public string Summary { get; init; } = "";
        public long StartedAt { get; init; }
        public long? FiredAt { get; init; }
        public long? ResolvedAt { get; init; }
        public string? NotifiedState { get; init; }

        public AlertResponse ToResponse() => new(Id, RuleId, Subject, State, Severity, Summary, DateTimeOffset.FromUnixTimeMilliseconds(StartedAt),
            FiredAt is { } f ? DateTimeOffset.FromUnixTimeMilliseconds(f) : null, ResolvedAt is { } r ? DateTimeOffset.FromUnixTimeMilliseconds(r) : null);
    }
}
