using System.Text.Json;
using Dapper;
using Fundament.Gpu.Placement;

namespace Fundament.Gpu;

/// <summary>Pools (<c>gpu_pools</c>, the spec as JSON) and the decision log (<c>gpu_decisions</c>).</summary>
internal sealed class GpuStore(IDatabase database, TimeProvider time)
{
    private static readonly JsonSerializerOptions Json = JsonSerializerOptions.Web;

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>False when a pool of that name exists.</summary>
    public async Task<bool> CreatePoolAsync(GpuPoolSpec spec, string? actor, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(database.Command("""
            INSERT INTO gpu_pools (name, spec, created_by, created_at, updated_at) VALUES (@name, @spec, @actor, @now, @now) ON CONFLICT (name) DO NOTHING
            """, new { name = spec.Name, spec = JsonSerializer.Serialize(spec, Json), actor, now = Now }, cancellationToken: cancellationToken)) > 0;
    }

    public async Task<GpuPoolResponse?> PoolAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<PoolRow>(database.Command(
            "SELECT name AS Name, spec AS Spec, created_by AS CreatedBy, created_at AS CreatedAt, updated_at AS UpdatedAt FROM gpu_pools WHERE name = @name", new { name }, cancellationToken: cancellationToken));
        return row?.ToResponse();
    }

    public async Task<IReadOnlyList<GpuPoolResponse>> PoolsAsync(string? after, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return [.. (await connection.QueryAsync<PoolRow>(database.Command(
            "SELECT name AS Name, spec AS Spec, created_by AS CreatedBy, created_at AS CreatedAt, updated_at AS UpdatedAt FROM gpu_pools WHERE name > @after ORDER BY name LIMIT @limit",
            new { after = after ?? "", limit }, cancellationToken: cancellationToken))).Select(r => r.ToResponse())];
    }

    public async Task<bool> DeletePoolAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(database.Command("DELETE FROM gpu_pools WHERE name = @name", new { name }, cancellationToken: cancellationToken)) > 0;
    }

    public async Task<GpuDecisionResponse> RecordAsync(string pool, PlacementDecision decision, string? instanceId, string? actor, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7().ToString();
        var at = Now;
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(database.Command("""
            INSERT INTO gpu_decisions (id, pool, at, chosen, instance_id, rejected, stopped, forecast_micros, requested_by)
            VALUES (@id, @pool, @at, @chosen, @instanceId, @rejected, @stopped, @forecast, @actor)
            """, new
        {
            id, pool, at, chosen = decision.Chosen is null ? null : JsonSerializer.Serialize(decision.Chosen, Json), instanceId,
            rejected = JsonSerializer.Serialize(decision.Rejected, Json), stopped = decision.Stopped, forecast = Micros(decision.ForecastCost), actor,
        }, cancellationToken: cancellationToken));
        return new GpuDecisionResponse(id, pool, DateTimeOffset.FromUnixTimeMilliseconds(at), decision.Chosen, instanceId, decision.Rejected, decision.Stopped, decision.ForecastCost, actor);
    }

    public async Task<IReadOnlyList<GpuDecisionResponse>> DecisionsAsync(string? pool, string? after, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<DecisionRow>(database.Command($"""
            SELECT id AS Id, pool AS Pool, at AS At, chosen AS Chosen, instance_id AS InstanceId, rejected AS Rejected, stopped AS Stopped,
                forecast_micros AS ForecastMicros, requested_by AS RequestedBy
            FROM gpu_decisions WHERE {(pool is null ? "1 = 1" : "pool = @pool")} AND {(after is null ? "1 = 1" : "id < @after")} ORDER BY id DESC LIMIT @limit
            """, new { pool, after, limit }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToResponse())];
    }

    /// <summary>Instances a pool launched that were not terminated through the API.</summary>
    public async Task<int> LiveInstancesAsync(string pool, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (int)await connection.ExecuteScalarAsync<long>(database.Command(
            "SELECT COUNT(*) FROM gpu_decisions WHERE pool = @pool AND instance_id IS NOT NULL AND terminated_at IS NULL", new { pool }, cancellationToken: cancellationToken));
    }

    /// <summary>The provider of a live instance of the pool, or null.</summary>
    public async Task<string?> InstanceProviderAsync(string pool, string instanceId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var chosen = await connection.ExecuteScalarAsync<string?>(database.Command(
            "SELECT chosen FROM gpu_decisions WHERE pool = @pool AND instance_id = @instanceId AND terminated_at IS NULL", new { pool, instanceId }, cancellationToken: cancellationToken));
        return chosen is null ? null : JsonSerializer.Deserialize<GpuOffer>(chosen, Json)!.Provider;
    }

    public async Task MarkTerminatedAsync(string pool, string instanceId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(database.Command(
            "UPDATE gpu_decisions SET terminated_at = @now WHERE pool = @pool AND instance_id = @instanceId AND terminated_at IS NULL", new { pool, instanceId, now = Now }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// What a pool's launches are forecast to cost since the start of the day and of the month (UTC):
    /// each launch counts its forecast window. An approximation until run-time metering records what
    /// instances really ran.
    /// </summary>
    public async Task<Spend> SpendAsync(string pool, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var day = new DateTimeOffset(now.Year, now.Month, now.Day, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var month = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        var today = await connection.ExecuteScalarAsync<long?>(database.Command(
            "SELECT SUM(forecast_micros) FROM gpu_decisions WHERE pool = @pool AND at >= @day AND chosen IS NOT NULL", new { pool, day }, cancellationToken: cancellationToken)) ?? 0;
        var thisMonth = await connection.ExecuteScalarAsync<long?>(database.Command(
            "SELECT SUM(forecast_micros) FROM gpu_decisions WHERE pool = @pool AND at >= @month AND chosen IS NOT NULL", new { pool, month }, cancellationToken: cancellationToken)) ?? 0;
        return new Spend(today / 1_000_000m, thisMonth / 1_000_000m);
    }

    /// <summary>Money is stored as whole micro-dollars: exact, and the same integer on both engines.</summary>
    private static long Micros(decimal dollars) => (long)decimal.Round(dollars * 1_000_000m);

    private sealed class PoolRow
    {
        public string Name { get; set; } = "";
        public string Spec { get; set; } = "";
        public string? CreatedBy { get; set; }
        public long CreatedAt { get; set; }
        public long UpdatedAt { get; set; }

        public GpuPoolResponse ToResponse() => new(JsonSerializer.Deserialize<GpuPoolSpec>(Spec, Json)!, CreatedBy,
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt));
    }

    private sealed class DecisionRow
    {
        public string Id { get; set; } = "";
        public string Pool { get; set; } = "";
        public long At { get; set; }
        public string? Chosen { get; set; }
        public string? InstanceId { get; set; }
        public string Rejected { get; set; } = "[]";
        public string? Stopped { get; set; }
        public long ForecastMicros { get; set; }
        public string? RequestedBy { get; set; }

        public GpuDecisionResponse ToResponse() => new(Id, Pool, DateTimeOffset.FromUnixTimeMilliseconds(At),
            Chosen is null ? null : JsonSerializer.Deserialize<GpuOffer>(Chosen, Json), InstanceId,
            JsonSerializer.Deserialize<List<RejectedOffer>>(Rejected, Json)!, Stopped, ForecastMicros / 1_000_000m, RequestedBy);
    }
}
