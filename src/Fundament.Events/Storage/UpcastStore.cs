using System.Text.Json;
using Dapper;

namespace Fundament.Events.Storage;

/// <summary>Each event type's declarative upcasts (table <c>events_upcasts</c>).</summary>
internal sealed class UpcastStore(IDatabase database, TimeProvider time)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<EventTypeUpcasts> SaveAsync(string type, IReadOnlyList<UpcastStep> steps, string? by, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(database.Command("""
            INSERT INTO events_upcasts (type, steps, updated_at, updated_by) VALUES (@type, @steps, @now, @by)
            ON CONFLICT (type) DO UPDATE SET steps = excluded.steps, updated_at = excluded.updated_at, updated_by = excluded.updated_by
            """, new { type, steps = JsonSerializer.Serialize(steps, Json), now = now.ToUnixTimeMilliseconds(), by }, cancellationToken: cancellationToken));
        return new EventTypeUpcasts(type, steps.Count + 1, steps, now, by);
    }

    public async Task<bool> DeleteAsync(string type, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(database.Command("DELETE FROM events_upcasts WHERE type = @type", new { type }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task<EventTypeUpcasts?> GetAsync(string type, CancellationToken cancellationToken) =>
        (await GetManyAsync([type], cancellationToken)).GetValueOrDefault(type);

    /// <summary>The upcasts of those of <paramref name="types"/> that have any.</summary>
    public async Task<IReadOnlyDictionary<string, EventTypeUpcasts>> GetManyAsync(IReadOnlyCollection<string> types, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Type, string Steps, long UpdatedAt, string? UpdatedBy)>(database.Command(
            $"SELECT type, steps, updated_at, updated_by FROM events_upcasts WHERE {database.Dialect.InList("type", "types")}", new { types = types.ToArray() }, cancellationToken: cancellationToken));
        return rows.ToDictionary(r => r.Type, r =>
        {
            var steps = JsonSerializer.Deserialize<List<UpcastStep>>(r.Steps, Json) ?? [];
            return new EventTypeUpcasts(r.Type, steps.Count + 1, steps, DateTimeOffset.FromUnixTimeMilliseconds(r.UpdatedAt), r.UpdatedBy);
        }, StringComparer.Ordinal);
    }
}
