using Dapper;

namespace Fundament.Vault.Policies;

/// <summary>
/// A vault policy bound to a role or principal by name gives whoever holds the role, or takes over
/// the principal, access to secrets: handing one out, or acting on one, needs <c>vault.admin</c>.
/// </summary>
internal sealed class VaultBoundGrants(IDatabase database) : IBoundGrants
{
    public async Task<IReadOnlyCollection<string>> RequiredForAsync(IReadOnlyCollection<string> subjects, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var bound = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            $"SELECT COUNT(*) FROM vault_policies WHERE {database.Dialect.InList("principal", "subjects")}",
            new { subjects = subjects.ToArray() }, cancellationToken: cancellationToken));
        return bound > 0 ? [VaultPermissions.Admin] : [];
    }
}
