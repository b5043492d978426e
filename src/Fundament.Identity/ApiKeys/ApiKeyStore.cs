using System.Text.Json;
using Dapper;

namespace Fundament.Identity.ApiKeys;

/// <summary>
/// Per-user API keys: <c>fk_&lt;8-char prefix&gt;_&lt;secret&gt;</c>, shown once, stored as SHA-256.
/// The prefix is kept in clear so a person can tell their keys apart.
/// </summary>
internal sealed class ApiKeyStore(IDatabase database, TimeProvider time, IRolePermissions rolePermissions, IEnumerable<IBoundGrants> bound) : Fundament.Core.Quotas.IQuotaMeter
{
    public string Quota => Fundament.Core.Quotas.Quota.ApiKeys;

    /// <summary>The user's live keys (not revoked, not expired), for the apiKeys quota.</summary>
    public async Task<long> UsedAsync(string actor, CancellationToken cancellationToken)
    {
        if (!actor.StartsWith("user:", StringComparison.Ordinal))
        {
            return 0;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM identity_api_keys WHERE user_id = @userId AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > @now)",
            new { userId = actor["user:".Length..], now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
    }

    public const string Scheme = "ApiKey";

    private static readonly TimeSpan LastUsedGranularity = TimeSpan.FromMinutes(1);

    public async Task<(ApiKeyResponse Key, string Secret)> CreateAsync(string userId, string name, IReadOnlyList<string> roles, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        var id = RandomTokens.NewId();
        var prefix = RandomTokens.New(6)[..8].Replace('-', 'a').Replace('_', 'b');
        var key = $"fk_{prefix}_{RandomTokens.New()}";
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO identity_api_keys (id, user_id, name, prefix, key_hash, roles, created_at, expires_at)
            VALUES (@id, @userId, @name, @prefix, @hash, @roles, @now, @expiresAt)
            """, new { id, userId, name, prefix, hash = RandomTokens.Hash(key), roles = JsonSerializer.Serialize(roles), now, expiresAt = expiresAt?.ToUnixTimeMilliseconds() },
            cancellationToken: cancellationToken));
        return (new ApiKeyResponse(id, name, "fk_" + prefix, roles, DateTimeOffset.FromUnixTimeMilliseconds(now), expiresAt, null, null), key);
    }

    /// <summary>
    /// One page of the user's keys, revoked ones included, by id descending (ids are time-ordered
    /// UUIDv7s, so newest first): those before <paramref name="before"/>; at most <paramref name="take"/>.
    /// </summary>
    public async Task<IReadOnlyList<ApiKeyResponse>> ListAsync(string userId, string? before, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<KeyRow>(new CommandDefinition("""
            SELECT id, name, prefix, roles, created_at AS CreatedAt, expires_at AS ExpiresAt, revoked_at AS RevokedAt, last_used_at AS LastUsedAt
            FROM identity_api_keys WHERE user_id = @userId AND (@before IS NULL OR id < @before) ORDER BY id DESC LIMIT @take
            """, new { userId, before, take }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToResponse()).ToList();
    }

    public async Task<bool> RevokeAsync(string userId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE identity_api_keys SET revoked_at = @now WHERE id = @id AND user_id = @userId AND revoked_at IS NULL",
            new { id, userId, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>Revokes every live key of <paramref name="userId"/>; returns how many.</summary>
    public async Task<int> RevokeAllAsync(string userId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE identity_api_keys SET revoked_at = @now WHERE user_id = @userId AND revoked_at IS NULL",
            new { userId, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
    }

    /// <summary>The key's owner and effective roles, or null when the key is unknown, revoked, expired or its owner disabled.</summary>
    public async Task<ApiKeyPrincipal?> AuthenticateAsync(string key, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<AuthRow>(new CommandDefinition("""
            SELECT k.id, k.roles, k.last_used_at AS LastUsedAt, u.id AS UserId, u.username
            FROM identity_api_keys k JOIN identity_users u ON u.id = k.user_id
            WHERE k.key_hash = @hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > @now) AND u.disabled = FALSE
            """, new { hash = RandomTokens.Hash(key), now }, cancellationToken: cancellationToken));
        if (row is null)
        {
            return null;
        }
        // A key never grants more than its owner holds today. It keeps a role the owner still holds
        // by name; another role (a narrower one such as guest) only while the owner holds all its
        // permissions and whatever is bound to it by name (vault policies, quota overrides).
        var userRoles = (await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT role FROM identity_user_roles WHERE user_id = @userId", new { userId = row.UserId }, cancellationToken: cancellationToken))).ToList();
        var held = await rolePermissions.PermissionsOfAsync(userRoles, cancellationToken);
        var roles = new List<string>();
        foreach (var role in JsonSerializer.Deserialize<string[]>(row.Roles) ?? [])
        {
            if (held.Contains(Permissions.All) || userRoles.Contains(role, StringComparer.Ordinal))
            {
                roles.Add(role);
                continue;
            }
            var needed = (await rolePermissions.PermissionsOfAsync([role], cancellationToken)).ToHashSet(StringComparer.Ordinal);
            foreach (var source in bound)
            {
                needed.UnionWith(await source.RequiredForAsync(["role:" + role], cancellationToken));
            }
            if (needed.All(held.Contains))
            {
                roles.Add(role);
            }
        }
        if (row.LastUsedAt is null || now - row.LastUsedAt.Value > LastUsedGranularity.TotalMilliseconds)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE identity_api_keys SET last_used_at = @now WHERE id = @id", new { id = row.Id, now }, cancellationToken: cancellationToken));
        }
        return new ApiKeyPrincipal(row.Id, row.UserId, row.Username, roles);
    }

    private sealed class KeyRow
    {
        public string Id { get; init; } = "";
        public string Name { get; init; } = "";
        public string Prefix { get; init; } = "";
        public string Roles { get; init; } = "[]";
        public long CreatedAt { get; init; }
        public long? ExpiresAt { get; init; }
        public long? RevokedAt { get; init; }
        public long? LastUsedAt { get; init; }

        public ApiKeyResponse ToResponse() => new(
            Id, Name, "fk_" + Prefix, JsonSerializer.Deserialize<string[]>(Roles) ?? [],
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), ToTime(ExpiresAt), ToTime(RevokedAt), ToTime(LastUsedAt));

        private static DateTimeOffset? ToTime(long? ms) => ms is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;
    }

    private sealed class AuthRow
    {
        public string Id { get; init; } = "";
        public string Roles { get; init; } = "[]";
        public long? LastUsedAt { get; init; }
        public string UserId { get; init; } = "";
        public string Username { get; init; } = "";
    }
}

internal sealed record ApiKeyPrincipal(string KeyId, string UserId, string Username, IReadOnlyList<string> Roles);

/// <summary>An API key (never the key itself after creation).</summary>
public sealed record ApiKeyResponse(string Id, string Name, string Prefix, IReadOnlyList<string> Roles, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt);

/// <summary>Body of <c>POST /api/v1/api-keys</c>.</summary>
/// <param name="Name">Required, 1-100 characters.</param>
/// <param name="Roles">Optional roles for the key, granting nothing beyond the caller's own permissions; default the caller's roles.</param>
/// <param name="ExpiresAt">Optional expiry in the future.</param>
public sealed record CreateApiKeyRequest(string? Name, IReadOnlyList<string>? Roles, DateTimeOffset? ExpiresAt);

/// <summary>Answer of <c>POST /api/v1/api-keys</c>: the only time <see cref="Key"/> is shown.</summary>
public sealed record CreatedApiKeyResponse(string Id, string Name, string Key, string Prefix, IReadOnlyList<string> Roles, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt);
