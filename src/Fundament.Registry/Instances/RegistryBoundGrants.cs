using Dapper;

namespace Fundament.Registry.Instances;

/// <summary>
/// A registry grant lets a client register instances of a service (and so take its traffic):
/// taking over such a client (rotating its secret, re-enabling it) needs <c>registry.write</c>.
/// </summary>
internal sealed class RegistryBoundGrants(IDatabase database) : IBoundGrants
{
    public async Task<IReadOnlyCollection<string>> RequiredForAsync(IReadOnlyCollection<string> subjects, CancellationToken cancellationToken)
    {
        var clients = subjects.Where(s => s.StartsWith("client:", StringComparison.Ordinal)).Select(s => s["client:".Length..]).ToArray();
        if (clients.Length == 0)
        {
            return [];
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var granted = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            $"SELECT COUNT(*) FROM registry_grants WHERE {database.Dialect.InList("client_id", "clients")}",
            new { clients }, cancellationToken: cancellationToken));
        return granted > 0 ? [RegistryPermissions.Write] : [];
    }
}
