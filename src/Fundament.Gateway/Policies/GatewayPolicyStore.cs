using Dapper;

namespace Fundament.Gateway.Policies;

/// <summary>A stored policy: its kind, name, JSON definition (the API body in canonical form) and version.</summary>
internal sealed record StoredPolicyRow(string Kind, string Name, string Definition, long Version, string UpdatedBy, long UpdatedAt);

/// <summary>
/// Gateway policies created through the API (table <c>gateway_policies</c>). Every change advances
/// <c>gateway_policy_index</c> in its transaction; every node compares that one number to notice
/// changes made elsewhere (<see cref="GatewayPolicyCatalog"/>).
/// </summary>
internal sealed class GatewayPolicyStore(IDatabase database, TimeProvider time)
{
    public async Task<long> IndexAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT value FROM gateway_policy_index WHERE id = 1", cancellationToken: cancellationToken));
    }

    public async Task<(long Index, IReadOnlyList<StoredPolicyRow> Rows)> AllAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var index = await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT value FROM gateway_policy_index WHERE id = 1", cancellationToken: cancellationToken));
        var rows = await connection.QueryAsync<StoredPolicyRow>(new CommandDefinition(
            "SELECT kind AS Kind, name AS Name, definition AS Definition, version AS Version, updated_by AS UpdatedBy, updated_at AS UpdatedAt FROM gateway_policies ORDER BY kind, name",
            cancellationToken: cancellationToken));
        return (index, rows.ToList());
    }

    /// <summary>
    /// One page of stored policies by kind, then name, after the cursor <c>"&lt;kind&gt; &lt;name&gt;"</c>;
    /// at most <paramref name="take"/> rows.
    /// </summary>
    public async Task<IReadOnlyList<StoredPolicyRow>> PageAsync(string? after, int take, CancellationToken cancellationToken)
    {
        var cursor = after is null ? null : Paging.Split(after, 2);
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<StoredPolicyRow>(new CommandDefinition("""
            SELECT kind AS Kind, name AS Name, definition AS Definition, version AS Version, updated_by AS UpdatedBy, updated_at AS UpdatedAt FROM gateway_policies
            WHERE (@afterKind IS NULL OR (kind, name) > (@afterKind, @afterName))
            ORDER BY kind, name LIMIT @take
            """, new { afterKind = cursor?[0], afterName = cursor?[1], take }, cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>Creates or replaces a policy; true when it was created.</summary>
    public Task<bool> PutAsync(string kind, string name, string definition, string actor, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            var version = await NextIndexAsync(connection, transaction, cancellationToken);
            var args = new { kind, name, definition, version, actor, now = time.GetUtcNow().ToUnixTimeMilliseconds() };
            var updated = await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE gateway_policies SET definition = @definition, version = @version, updated_by = @actor, updated_at = @now WHERE kind = @kind AND name = @name",
                args, transaction, cancellationToken: cancellationToken));
            if (updated == 0)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO gateway_policies (kind, name, definition, version, updated_by, updated_at) VALUES (@kind, @name, @definition, @version, @actor, @now)",
                    args, transaction, cancellationToken: cancellationToken));
            }
            return updated == 0;
        }, cancellationToken);

    public Task<bool> DeleteAsync(string kind, string name, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await NextIndexAsync(connection, transaction, cancellationToken);
            return await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM gateway_policies WHERE kind = @kind AND name = @name", new { kind, name }, transaction, cancellationToken: cancellationToken)) == 1;
        }, cancellationToken);

    private static Task<long> NextIndexAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "UPDATE gateway_policy_index SET value = value + 1 WHERE id = 1 RETURNING value", transaction: transaction, cancellationToken: cancellationToken));
}
