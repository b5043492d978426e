using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Fundament.Identity.Users;

namespace Fundament.Identity.Clients;

/// <summary>Service clients for the client_credentials grant. Secrets are shown once and stored as SHA-256.</summary>
internal sealed class ClientStore(IDatabase database, TimeProvider time)
{
    private const string Columns = "id, name, roles, disabled, created_at AS CreatedAt, created_by AS CreatedBy, secret_rotated_at AS SecretRotatedAt";

    /// <returns>The client and its secret, or null when the name is taken.</returns>
    public async Task<(ClientResponse Client, string Secret)?> CreateAsync(string name, IReadOnlyList<string> roles, string? createdBy, CancellationToken cancellationToken)
    {
        var id = "fc_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));
        var secret = RandomTokens.New();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        try
        {
            await database.InTransactionAsync((connection, transaction) => connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO identity_clients (id, name, name_normalized, secret_hash, roles, disabled, created_at, created_by, secret_rotated_at)
                VALUES (@id, @name, @normalized, @hash, @roles, FALSE, @now, @createdBy, @now)
                """, new { id, name, normalized = UserStore.Normalize(name), hash = RandomTokens.Hash(secret), roles = JsonSerializer.Serialize(roles), now, createdBy },
                transaction, cancellationToken: cancellationToken)), cancellationToken);
        }
        catch (DbException ex) when (database.Dialect.IsUniqueViolation(ex))
        {
            return null;
        }
        return ((await GetAsync(id, cancellationToken))!, secret);
    }

    public async Task<ClientResponse?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<ClientRow>(new CommandDefinition(
            $"SELECT {Columns} FROM identity_clients WHERE id = @id", new { id }, cancellationToken: cancellationToken));
        return row?.ToResponse();
    }

    /// <summary>One page of clients by normalized name, after <paramref name="after"/> (see <see cref="Cursor"/>); at most <paramref name="take"/>.</summary>
    public async Task<IReadOnlyList<ClientResponse>> ListAsync(string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<ClientRow>(new CommandDefinition(
            $"SELECT {Columns} FROM identity_clients WHERE (@after IS NULL OR name_normalized > @after) ORDER BY name_normalized LIMIT @take",
            new { after, take }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToResponse()).ToList();
    }

    /// <summary>The paging cursor of a client: its normalized name, the unique key the list is ordered by.</summary>
    public static string Cursor(ClientResponse client) => UserStore.Normalize(client.Name);

    /// <summary>Checks a client's secret in constant time; null when the id is unknown, the secret wrong, or the client disabled.</summary>
    public async Task<ClientResponse?> AuthenticateAsync(string id, string secret, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<ClientRow>(new CommandDefinition(
            $"SELECT {Columns}, secret_hash AS SecretHash FROM identity_clients WHERE id = @id", new { id }, cancellationToken: cancellationToken));
        var presented = Encoding.ASCII.GetBytes(RandomTokens.Hash(secret));
        var expected = Encoding.ASCII.GetBytes(row?.SecretHash ?? new string('0', 64));
        var ok = CryptographicOperations.FixedTimeEquals(presented, expected);
        return ok && row is { Disabled: false } ? row.ToResponse() : null;
    }

    public async Task<string?> RotateSecretAsync(string id, CancellationToken cancellationToken)
    {
        var secret = RandomTokens.New();
        await using var connection = await database.OpenAsync(cancellationToken);
        var updated = await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE identity_clients SET secret_hash = @hash, secret_rotated_at = @now WHERE id = @id",
            new { id, hash = RandomTokens.Hash(secret), now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
        return updated == 1 ? secret : null;
    }

    public async Task<bool> UpdateAsync(string id, IReadOnlyList<string>? roles, bool? disabled, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var updated = await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE identity_clients SET roles = COALESCE(@roles, roles), disabled = COALESCE(@disabled, disabled) WHERE id = @id
            """, new { id, roles = roles is null ? null : JsonSerializer.Serialize(roles), disabled }, cancellationToken: cancellationToken));
        return updated == 1;
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // With its quota overrides, so a later client of the same id cannot inherit them.
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_quotas WHERE scope = 'principal' AND subject = @subject", new { subject = "client:" + id }, cancellationToken: cancellationToken));
        return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM identity_clients WHERE id = @id", new { id }, cancellationToken: cancellationToken)) == 1;
    }

    private sealed class ClientRow
    {
        public string Id { get; init; } = "";
        public string Name { get; init; } = "";
        public string Roles { get; init; } = "[]";
        public bool Disabled { get; init; }
        public long CreatedAt { get; init; }
        public string? CreatedBy { get; init; }
        public long SecretRotatedAt { get; init; }
        public string? SecretHash { get; init; }

        public ClientResponse ToResponse() => new(
            Id, Name, JsonSerializer.Deserialize<string[]>(Roles) ?? [], Disabled,
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), CreatedBy, DateTimeOffset.FromUnixTimeMilliseconds(SecretRotatedAt));
    }
}

/// <summary>A service client (never its secret).</summary>
public sealed record ClientResponse(string ClientId, string Name, IReadOnlyList<string> Roles, bool Disabled, DateTimeOffset CreatedAt, string? CreatedBy, DateTimeOffset SecretRotatedAt);
