using System.Text.Json;
using Dapper;

namespace Fundament.Identity.Roles;

/// <summary>
/// Roles and the permissions they grant. Lookups for authorization come from an in-memory
/// snapshot refreshed every few seconds, so a role change reaches every replica quickly without a
/// query per request.
/// </summary>
internal sealed class RoleStore(IDatabase database, PermissionCatalog catalog, TimeProvider time) : IRolePermissions, IStartupTask
{
    public const string Admin = BuiltInRoles.Admin;
    public const string User = BuiltInRoles.User;
    public const string Guest = BuiltInRoles.Guest;
    public const string Service = BuiltInRoles.Service;

    private static readonly TimeSpan SnapshotTtl = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The built-in roles: what each is for, and the permissions the modules grant it
    /// (<see cref="Fundament.Core.Modules.PermissionDefinition.BuiltInRoles"/>). Every node declares every
    /// module's permissions whatever its roles, so any node writes the same rows.
    /// </summary>
    public IReadOnlyDictionary<string, (string Description, string[] Permissions)> BuiltIn { get; } =
        new Dictionary<string, (string, string[])>(StringComparer.Ordinal)
        {
            [Admin] = ("Everything, including managing users, roles, clients and the audit log.", [Permissions.All]),
            [User] = ("A person using the platform: own profile, sessions, API keys, media and webhooks.", catalog.GrantedTo(User)),
            [Guest] = ("Read-only access to what is shared with them.", catalog.GrantedTo(Guest)),
            [Service] = ("A service's own client: register itself, discover others, read its own configuration.", catalog.GrantedTo(Service)),
        };

    private volatile Snapshot? _snapshot;

    public int Order => 0;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        foreach (var (name, (description, permissions)) in BuiltIn)
        {
            // Built-in roles follow the code, so an upgrade that adds permissions updates them.
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO identity_roles (name, description, permissions, builtin, created_at, updated_at)
                VALUES (@name, @description, @permissions, TRUE, @now, @now)
                ON CONFLICT (name) DO UPDATE SET description = excluded.description, permissions = excluded.permissions, builtin = TRUE
                """, new { name, description, permissions = JsonSerializer.Serialize(permissions), now }, cancellationToken: cancellationToken));
        }
        Invalidate();
    }

    public async ValueTask<IReadOnlySet<string>> PermissionsOfAsync(IReadOnlyList<string> roles, CancellationToken cancellationToken)
    {
        var snapshot = await SnapshotAsync(cancellationToken);
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var role in roles)
        {
            if (snapshot.Permissions.TryGetValue(role, out var permissions))
            {
                result.UnionWith(permissions);
            }
        }
        return result;
    }

    public async Task<bool> ExistsAsync(string name, CancellationToken cancellationToken) =>
        (await SnapshotAsync(cancellationToken)).Permissions.ContainsKey(name);

    /// <summary>
    /// One page of roles by name, after <paramref name="after"/>; at most <paramref name="take"/>.
    /// Read from the table, not the snapshot that authorization uses.
    /// </summary>
    public async Task<IReadOnlyList<RoleResponse>> ListAsync(string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<RoleRow>(new CommandDefinition(
            "SELECT name, description, permissions, builtin, created_at AS CreatedAt, updated_at AS UpdatedAt FROM identity_roles WHERE (@after IS NULL OR name > @after) ORDER BY name LIMIT @take",
            new { after, take }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToResponse()).ToList();
    }

    public async Task<RoleResponse?> GetAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<RoleRow>(new CommandDefinition(
            "SELECT name, description, permissions, builtin, created_at AS CreatedAt, updated_at AS UpdatedAt FROM identity_roles WHERE name = @name",
            new { name }, cancellationToken: cancellationToken));
        return row?.ToResponse();
    }

    /// <returns>False when a role of that name exists.</returns>
    public async Task<bool> CreateAsync(string name, string? description, IReadOnlyList<string> permissions, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        var inserted = await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO identity_roles (name, description, permissions, builtin, created_at, updated_at)
            VALUES (@name, @description, @permissions, FALSE, @now, @now) ON CONFLICT (name) DO NOTHING
            """, new { name, description, permissions = JsonSerializer.Serialize(permissions), now }, cancellationToken: cancellationToken));
        Invalidate();
        return inserted == 1;
    }

    public async Task<bool> UpdateAsync(string name, string? description, IReadOnlyList<string> permissions, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var updated = await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE identity_roles SET description = @description, permissions = @permissions, updated_at = @now WHERE name = @name AND builtin = FALSE",
            new { name, description, permissions = JsonSerializer.Serialize(permissions), now = time.GetUtcNow().ToUnixTimeMilliseconds() },
            cancellationToken: cancellationToken));
        Invalidate();
        return updated == 1;
    }

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var deleted = await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM identity_roles WHERE name = @name AND builtin = FALSE", new { name }, cancellationToken: cancellationToken));
        if (deleted == 1)
        {
            // With its quota overrides, so a later role of the same name starts from the defaults.
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_quotas WHERE scope = 'role' AND subject = @name", new { name }, cancellationToken: cancellationToken));
        }
        Invalidate();
        return deleted == 1;
    }

    /// <summary>Drops the snapshot (after the current unit of work commits, so nobody re-reads the old state meanwhile).</summary>
    public void Invalidate() => UnitOfWork.AfterCommit(() => _snapshot = null);

    private async ValueTask<Snapshot> SnapshotAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_snapshot is { } current && now - current.LoadedAt < SnapshotTtl)
        {
            return current;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Name, string Permissions)>(new CommandDefinition(
            "SELECT name, permissions FROM identity_roles", cancellationToken: cancellationToken));
        var map = rows.ToDictionary(
            r => r.Name,
            r => (IReadOnlySet<string>)(JsonSerializer.Deserialize<string[]>(r.Permissions) ?? []).ToHashSet(StringComparer.Ordinal),
            StringComparer.Ordinal);
        var snapshot = new Snapshot(map, now);
        _snapshot = snapshot;
        return snapshot;
    }

    private sealed record Snapshot(IReadOnlyDictionary<string, IReadOnlySet<string>> Permissions, DateTimeOffset LoadedAt);

    private sealed class RoleRow
    {
        public string Name { get; init; } = "";
        public string? Description { get; init; }
        public string Permissions { get; init; } = "[]";
        public bool Builtin { get; init; }
        public long CreatedAt { get; init; }
        public long UpdatedAt { get; init; }

        public RoleResponse ToResponse() => new(
            Name, Description, JsonSerializer.Deserialize<string[]>(Permissions) ?? [], Builtin,
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt));
    }
}

/// <summary>A role and the permissions it grants.</summary>
public sealed record RoleResponse(string Name, string? Description, IReadOnlyList<string> Permissions, bool Builtin, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>Body of <c>POST /api/v1/roles</c> and <c>PUT /api/v1/roles/{name}</c>.</summary>
/// <param name="Name">Required on create: 2-64 of a-z, 0-9, '-', '_'. Ignored on update.</param>
/// <param name="Permissions">Required: the permissions granted; see <c>GET /api/v1/roles/permissions</c>.</param>
public sealed record RoleRequest(string? Name, string? Description, IReadOnlyList<string>? Permissions);
