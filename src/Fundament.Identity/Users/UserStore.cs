using System.Data.Common;
using Dapper;

namespace Fundament.Identity.Users;

/// <summary>Users and their role assignments (tables <c>identity_users</c>, <c>identity_user_roles</c>).</summary>
internal sealed class UserStore(IDatabase database, TimeProvider time)
{
    private const string Columns = "id, username, email, password_hash AS PasswordHash, disabled, created_at AS CreatedAt, updated_at AS UpdatedAt, password_changed_at AS PasswordChangedAt";

    public static string Normalize(string value) => value.Trim().ToUpperInvariant();

    /// <returns>The new user, or null when the username is taken.</returns>
    public async Task<UserRecord?> CreateAsync(string username, string? email, string passwordHash, IReadOnlyList<string> roles, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var id = RandomTokens.NewId();
        try
        {
            await database.InTransactionAsync(async (connection, transaction) =>
            {
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO identity_users (id, username, username_normalized, email, email_normalized, password_hash, disabled, created_at, updated_at, password_changed_at)
                    VALUES (@id, @username, @normalized, @email, @emailNormalized, @passwordHash, FALSE, @now, @now, @now)
                    """, new { id, username, normalized = Normalize(username), email, emailNormalized = email is null ? null : Normalize(email), passwordHash, now },
                    transaction, cancellationToken: cancellationToken));
                await SetRolesAsync(connection, transaction, id, roles, cancellationToken);
                return 0;
            }, cancellationToken);
        }
        catch (DbException ex) when (database.Dialect.IsUniqueViolation(ex))
        {
            return null;
        }
        return await GetAsync(id, cancellationToken);
    }

    public async Task<UserRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<UserRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM identity_users WHERE id = @id", new { id }, cancellationToken: cancellationToken));
        return row is null ? null : (await WithRolesAsync(connection, [row], cancellationToken))[0];
    }

    public async Task<UserRecord?> FindByUsernameAsync(string username, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<UserRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM identity_users WHERE username_normalized = @normalized", new { normalized = Normalize(username) }, cancellationToken: cancellationToken));
        return row is null ? null : (await WithRolesAsync(connection, [row], cancellationToken))[0];
    }

    public async Task<IReadOnlyList<UserRecord>> FindByEmailAsync(string email, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = (await connection.QueryAsync<UserRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM identity_users WHERE email_normalized = @normalized", new { normalized = Normalize(email) }, cancellationToken: cancellationToken))).ToList();
        return await WithRolesAsync(connection, rows, cancellationToken);
    }

    public async Task<(IReadOnlyList<UserRecord> Items, long Total)> ListAsync(int page, int pageSize, string? search, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var filter = string.IsNullOrWhiteSpace(search) ? "" : " WHERE username_normalized LIKE @prefix ESCAPE '\\'";
        var prefix = search is null ? null : EscapeLike(Normalize(search)) + "%";
        var total = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            $"SELECT COUNT(*) FROM identity_users{filter}", new { prefix }, cancellationToken: cancellationToken));
        var rows = (await connection.QueryAsync<UserRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM identity_users{filter} ORDER BY username_normalized LIMIT @limit OFFSET @offset",
            new { prefix, limit = pageSize, offset = (long)(page - 1) * pageSize }, cancellationToken: cancellationToken))).ToList();
        return (await WithRolesAsync(connection, rows, cancellationToken), total);
    }

    public async Task<bool> UpdateAsync(string id, UserChanges changes, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            var exists = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM identity_users WHERE id = @id", new { id }, transaction, cancellationToken: cancellationToken));
            if (exists == 0)
            {
                return false;
            }
            if (changes.Email is not null)
            {
                var email = changes.Email.Length == 0 ? null : changes.Email;
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE identity_users SET email = @email, email_normalized = @normalized, updated_at = @now WHERE id = @id",
                    new { id, email, normalized = email is null ? null : Normalize(email), now }, transaction, cancellationToken: cancellationToken));
            }
            if (changes.PasswordHash is not null)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE identity_users SET password_hash = @hash, password_changed_at = @now, updated_at = @now WHERE id = @id",
                    new { id, hash = changes.PasswordHash, now }, transaction, cancellationToken: cancellationToken));
                // A second-factor challenge was earned with the old password: it ends with it.
                await connection.ExecuteAsync(new CommandDefinition(
                    "DELETE FROM identity_mfa_challenges WHERE user_id = @id", new { id }, transaction, cancellationToken: cancellationToken));
            }
            if (changes.Disabled is { } disabled)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE identity_users SET disabled = @disabled, updated_at = @now WHERE id = @id",
                    new { id, disabled, now }, transaction, cancellationToken: cancellationToken));
            }
            if (changes.Roles is not null)
            {
                await SetRolesAsync(connection, transaction, id, changes.Roles, cancellationToken);
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE identity_users SET updated_at = @now WHERE id = @id", new { id, now }, transaction, cancellationToken: cancellationToken));
            }
            return true;
        }, cancellationToken);
    }

    /// <summary>Replaces the stored hash only if it is still <paramref name="expected"/> (a login-time upgrade must not undo a concurrent change).</summary>
    public async Task UpgradeHashAsync(string id, string expected, string hash, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE identity_users SET password_hash = @hash WHERE id = @id AND password_hash = @expected",
            new { id, hash, expected }, cancellationToken: cancellationToken));
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // With its quota overrides, so a later account cannot inherit them.
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_quotas WHERE scope = 'principal' AND subject = @subject", new { subject = "user:" + id }, cancellationToken: cancellationToken));
        return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_users WHERE id = @id", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task<long> CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM identity_users", cancellationToken: cancellationToken));
    }

    /// <summary>Enabled users holding <paramref name="role"/>, other than <paramref name="exceptUserId"/>.</summary>
    public async Task<long> CountEnabledWithRoleAsync(string role, string exceptUserId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition("""
            SELECT COUNT(*) FROM identity_users u JOIN identity_user_roles r ON r.user_id = u.id
            WHERE r.role = @role AND u.disabled = FALSE AND u.id <> @exceptUserId
            """, new { role, exceptUserId }, cancellationToken: cancellationToken));
    }

    private static async Task SetRolesAsync(DbConnection connection, DbTransaction transaction, string id, IReadOnlyList<string> roles, CancellationToken cancellationToken)
    {
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_user_roles WHERE user_id = @id", new { id }, transaction, cancellationToken: cancellationToken));
        foreach (var role in roles.Distinct(StringComparer.Ordinal))
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO identity_user_roles (user_id, role) VALUES (@id, @role)", new { id, role }, transaction, cancellationToken: cancellationToken));
        }
    }

    private async Task<IReadOnlyList<UserRecord>> WithRolesAsync(DbConnection connection, IReadOnlyList<UserRecord> users, CancellationToken cancellationToken)
    {
        if (users.Count == 0)
        {
            return users;
        }
        var rows = await connection.QueryAsync<(string UserId, string Role)>(new CommandDefinition(
            $"SELECT user_id, role FROM identity_user_roles WHERE {database.Dialect.InList("user_id", "ids")} ORDER BY role", new { ids = users.Select(u => u.Id).ToArray() }, cancellationToken: cancellationToken));
        var byUser = rows.ToLookup(r => r.UserId, r => r.Role, StringComparer.Ordinal);
        return users.Select(u => u with { Roles = byUser[u.Id].ToList() }).ToList();
    }

    private static string EscapeLike(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);
}

internal sealed record UserRecord
{
    public string Id { get; init; } = "";
    public string Username { get; init; } = "";
    public string? Email { get; init; }
    public string PasswordHash { get; init; } = "";
    public bool Disabled { get; init; }
    public long CreatedAt { get; init; }
    public long UpdatedAt { get; init; }
    public long PasswordChangedAt { get; init; }
    public IReadOnlyList<string> Roles { get; init; } = [];

    public UserResponse ToResponse() => new(
        Id, Username, Email, Roles, Disabled,
        DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt));
}

/// <summary>Fields to change; null leaves a field as it is (an empty email clears it).</summary>
internal sealed record UserChanges(string? Email = null, string? PasswordHash = null, bool? Disabled = null, IReadOnlyList<string>? Roles = null);
