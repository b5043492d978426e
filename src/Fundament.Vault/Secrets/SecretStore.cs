using System.Data.Common;
using System.Text;
using Dapper;
using Fundament.Core.Keys;

namespace Fundament.Vault.Secrets;

/// <summary>
/// Versioned secrets (tables <c>vault_secrets</c>, <c>vault_secret_versions</c>). Each version is an
/// envelope whose associated data is its path and version, so a ciphertext copied onto another row
/// does not decrypt. Plaintext exists only in memory, between the request and this class.
/// </summary>
internal sealed class SecretStore(IDatabase database, EnvelopeEncryption encryption, TimeProvider time, IOptions<VaultOptions> options) : IEnvelopeHolder
{
    public string Name => "vault secrets";

    public static byte[] Aad(string path, int version) => Encoding.UTF8.GetBytes($"fundament:vault:secret:{path}#{version}");

    public async Task<PutResult> PutAsync(string path, byte[] value, int? cas, int? maxVersions, TimeSpan? rotateEvery, bool clearRotation, string actor, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await TryPutAsync(path, value, cas, maxVersions, rotateEvery, clearRotation, actor, cancellationToken);
            }
            catch (DbException ex) when (attempt == 0 && database.Dialect.IsUniqueViolation(ex))
            {
                // Two first writes of one path raced; the second now sees the first and retries once.
            }
        }
    }

    private async Task<PutResult> TryPutAsync(string path, byte[] value, int? cas, int? maxVersions, TimeSpan? rotateEvery, bool clearRotation, string actor, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return await database.InTransactionAsync(async (connection, transaction) =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<(long Current, long Max, long? RotateEveryMs)?>(database.Command("SELECT current_version, max_versions, rotate_every_ms FROM vault_secrets WHERE path = @path{for_update}",
                new { path }, transaction, cancellationToken: cancellationToken));
            var current = (int)(row?.Current ?? 0);
            if (cas is { } expected && expected != current)
            {
                return PutResult.CasMismatch(current);
            }
            var version = current + 1;
            var max = maxVersions ?? (int)(row?.Max ?? options.Value.DefaultMaxVersions);
            var rotateMs = clearRotation ? null : rotateEvery is { } r ? (long)r.TotalMilliseconds : row?.RotateEveryMs;
            if (row is null)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO vault_secrets (path, current_version, max_versions, rotate_every_ms, created_at, updated_at) VALUES (@path, @version, @max, @rotateMs, @now, @now)",
                    new { path, version, max, rotateMs, now }, transaction, cancellationToken: cancellationToken));
            }
            else
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE vault_secrets SET current_version = @version, max_versions = @max, rotate_every_ms = @rotateMs, updated_at = @now WHERE path = @path",
                    new { path, version, max, rotateMs, now }, transaction, cancellationToken: cancellationToken));
            }
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO vault_secret_versions (path, version, ciphertext, created_at, created_by) VALUES (@path, @version, @ciphertext, @now, @actor)",
                new { path, version, ciphertext = encryption.Encrypt(value, Aad(path, version)), now, actor }, transaction, cancellationToken: cancellationToken));
            await connection.ExecuteAsync(new CommandDefinition(
                "DELETE FROM vault_secret_versions WHERE path = @path AND version <= @cutoff",
                new { path, cutoff = version - max }, transaction, cancellationToken: cancellationToken));
            // Its domain event, committed with it and published afterwards (VaultEventPublisher).
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO vault_event_outbox (id, event, path, version, at, actor) VALUES (@id, @evt, @path, @version, @now, @actor)",
                new { id = Guid.CreateVersion7().ToString(), evt = version == 1 ? VaultEvents.Created : VaultEvents.Rotated, path, version, now, actor }, transaction,
                cancellationToken: cancellationToken));
            return PutResult.Written(version);
        }, cancellationToken);
    }

    /// <summary>Reads and decrypts one version (the current one when <paramref name="version"/> is null).</summary>
    /// <exception cref="System.Security.Cryptography.CryptographicException">The stored ciphertext failed authentication.</exception>
    public async Task<ReadResult> ReadAsync(string path, int? version, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<VersionRow>(new CommandDefinition("""
            SELECT v.version, v.ciphertext, v.created_at AS CreatedAt, v.deleted_at AS DeletedAt, v.destroyed_at AS DestroyedAt
            FROM vault_secrets s JOIN vault_secret_versions v ON v.path = s.path
            WHERE s.path = @path AND v.version = COALESCE(@version, s.current_version)
            """, new { path, version }, cancellationToken: cancellationToken));
        if (row is null)
        {
            return new ReadResult(ReadStatus.NotFound, version ?? 0, null, default);
        }
        var createdAt = DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt);
        if (row.DestroyedAt is not null || row.Ciphertext is null)
        {
            return new ReadResult(ReadStatus.Destroyed, (int)row.Version, null, createdAt);
        }
        if (row.DeletedAt is not null)
        {
            return new ReadResult(ReadStatus.Deleted, (int)row.Version, null, createdAt);
        }
        return new ReadResult(ReadStatus.Ok, (int)row.Version, encryption.Decrypt(row.Ciphertext, Aad(path, (int)row.Version)), createdAt);
    }

    public async Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // An exact, case-sensitive prefix on both engines (LIKE ignores case on SQLite).
        return (await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT path FROM vault_secrets WHERE substr(path, 1, @length) = @prefix ORDER BY path",
            new { prefix, length = prefix.Length }, cancellationToken: cancellationToken))).ToList();
    }

    /// <summary>One page of the paths under <paramref name="prefix"/>, after <paramref name="after"/>; at most <paramref name="take"/>.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(string prefix, string? after, int take, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<string>(new CommandDefinition(
            "SELECT path FROM vault_secrets WHERE substr(path, 1, @length) = @prefix AND (@after IS NULL OR path > @after) ORDER BY path LIMIT @take",
            new { prefix, length = prefix.Length, after, take }, cancellationToken: cancellationToken))).ToList();
    }

    public async Task<SecretMetadata?> MetadataAsync(string path, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var secret = await connection.QuerySingleOrDefaultAsync<SecretRow>(new CommandDefinition(
            "SELECT path, current_version AS CurrentVersion, max_versions AS MaxVersions, rotate_every_ms AS RotateEveryMs, created_at AS CreatedAt, updated_at AS UpdatedAt FROM vault_secrets WHERE path = @path",
            new { path }, cancellationToken: cancellationToken));
        if (secret is null)
        {
            return null;
        }
        var versions = await connection.QueryAsync<VersionMetaRow>(new CommandDefinition(
            "SELECT version, created_at AS CreatedAt, created_by AS CreatedBy, deleted_at AS DeletedAt, destroyed_at AS DestroyedAt FROM vault_secret_versions WHERE path = @path ORDER BY version",
            new { path }, cancellationToken: cancellationToken));
        var current = versions.FirstOrDefault(v => v.Version == secret.CurrentVersion);
        DateTimeOffset? due = secret.RotateEveryMs is { } every && current is not null ? DateTimeOffset.FromUnixTimeMilliseconds(current.CreatedAt + every) : null;
        return new SecretMetadata(
            secret.Path, (int)secret.CurrentVersion, (int)secret.MaxVersions,
            secret.RotateEveryMs is { } ms ? Fundament.Core.Hosting.Durations.Format(TimeSpan.FromMilliseconds(ms)) : null, due,
            DateTimeOffset.FromUnixTimeMilliseconds(secret.CreatedAt), DateTimeOffset.FromUnixTimeMilliseconds(secret.UpdatedAt),
            versions.Select(v => new SecretVersionInfo((int)v.Version, DateTimeOffset.FromUnixTimeMilliseconds(v.CreatedAt), v.CreatedBy,
                v.DeletedAt is { } d ? DateTimeOffset.FromUnixTimeMilliseconds(d) : null, v.DestroyedAt is not null)).ToList());
    }

    /// <summary>Soft-deletes, undeletes or destroys versions; returns how many changed.</summary>
    public async Task<int> ChangeVersionsAsync(string path, IReadOnlyList<int> versions, VersionChange change, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var set = change switch
        {
            VersionChange.Delete => "deleted_at = @now WHERE deleted_at IS NULL AND destroyed_at IS NULL AND",
            VersionChange.Undelete => "deleted_at = NULL WHERE deleted_at IS NOT NULL AND destroyed_at IS NULL AND",
            _ => "ciphertext = NULL, destroyed_at = @now WHERE destroyed_at IS NULL AND",
        };
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            $"UPDATE vault_secret_versions SET {set} path = @path AND {database.Dialect.InList("version", "versions")}",
            new { path, versions = versions.Select(v => (long)v).ToArray(), now }, cancellationToken: cancellationToken));
    }

    public async Task<int?> CurrentVersionAsync(string path, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<int?>(new CommandDefinition(
            "SELECT current_version FROM vault_secrets WHERE path = @path", new { path }, cancellationToken: cancellationToken));
    }

    /// <summary>Removes the secret with every version and its metadata.</summary>
    public async Task<bool> PurgeAsync(string path, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM vault_secret_versions WHERE path = @path", new { path }, transaction, cancellationToken: cancellationToken));
            return await connection.ExecuteAsync(new CommandDefinition("DELETE FROM vault_secrets WHERE path = @path", new { path }, transaction, cancellationToken: cancellationToken)) == 1;
        }, cancellationToken);

    public async Task<bool> UpdateMetadataAsync(string path, int? maxVersions, TimeSpan? rotateEvery, bool clearRotation, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE vault_secrets SET
                max_versions = COALESCE(@maxVersions, max_versions),
                rotate_every_ms = CASE WHEN @clear THEN NULL ELSE COALESCE(@rotateMs, rotate_every_ms) END,
                updated_at = @now
            WHERE path = @path
            """, new
        {
            path, maxVersions, clear = clearRotation, rotateMs = rotateEvery is { } r ? (long?)r.TotalMilliseconds : null,
            now = time.GetUtcNow().ToUnixTimeMilliseconds(),
        }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>Secrets whose current version is older than their rotation interval.</summary>
    public Task<IReadOnlyList<RotationDue>> RotationDueAsync(CancellationToken cancellationToken) =>
        RotationDueAsync(null, null, null, cancellationToken);

    /// <summary>
    /// One page of <see cref="RotationDueAsync(CancellationToken)"/>: most overdue first (then by path,
    /// which makes the key unique), after the secret due at <paramref name="afterDue"/> (Unix ms) with
    /// path <paramref name="afterPath"/>; at most <paramref name="take"/>.
    /// </summary>
    public async Task<IReadOnlyList<RotationDue>> RotationDueAsync(long? afterDue, string? afterPath, int? take, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Path, long RotateEveryMs, long CreatedAt)>(new CommandDefinition($"""
            SELECT s.path, s.rotate_every_ms, v.created_at
            FROM vault_secrets s JOIN vault_secret_versions v ON v.path = s.path AND v.version = s.current_version
            WHERE s.rotate_every_ms IS NOT NULL AND v.created_at + s.rotate_every_ms < @now
              AND (@afterDue IS NULL OR (v.created_at + s.rotate_every_ms, s.path) > (@afterDue, @afterPath))
            ORDER BY v.created_at + s.rotate_every_ms, s.path{(take is null ? "" : " LIMIT @take")}
            """, new { now, afterDue, afterPath = afterPath ?? "", take }, cancellationToken: cancellationToken));
        return rows.Select(r => new RotationDue(r.Path, DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt),
            Fundament.Core.Hosting.Durations.Format(TimeSpan.FromMilliseconds(r.RotateEveryMs)),
            DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt + r.RotateEveryMs))).ToList();
    }

    /// <summary>Records that a stored ciphertext failed authentication, for the integrity alert.</summary>
    public async Task RecordIntegrityFailureAsync(string path, int? version, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO vault_integrity_events (id, path, version, at) VALUES (@id, @path, @version, @now)",
            new { id = Guid.CreateVersion7().ToString(), path, version, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<(string Path, DateTimeOffset At)>> IntegrityFailuresSinceAsync(DateTimeOffset since, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Path, long At)>(new CommandDefinition(
            "SELECT path, MAX(at) FROM vault_integrity_events WHERE at >= @since GROUP BY path", new { since = since.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken));
        return rows.Select(r => (r.Path, DateTimeOffset.FromUnixTimeMilliseconds(r.At))).ToList();
    }

    public Task<RewrapResult> RewrapAsync(EnvelopeEncryption current, CancellationToken cancellationToken) =>
        EnvelopeColumn.RewrapAsync(database, current, "vault_secret_versions", ["path", "version"], "ciphertext", null, cancellationToken);

    /// <summary>
    /// Decrypts up to <paramref name="sample"/> live secret versions, spread over the whole table,
    /// for <c>fundament backup verify</c>: how many decrypted, which failed, how many there are.
    /// </summary>
    public async Task<(int Decrypted, IReadOnlyList<string> Failed, long Total)> DecryptSampleAsync(int sample, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var total = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM vault_secret_versions WHERE ciphertext IS NOT NULL", cancellationToken: cancellationToken));
        var every = Math.Max(1, total / Math.Max(1, sample));
        var rows = await connection.QueryAsync<(string Path, long Version, byte[] Ciphertext)>(new CommandDefinition("""
            SELECT path, version, ciphertext FROM (
                SELECT path, version, ciphertext, ROW_NUMBER() OVER (ORDER BY path, version) AS n
                FROM vault_secret_versions WHERE ciphertext IS NOT NULL) numbered
            WHERE (n - 1) % @every = 0
            ORDER BY path, version
            LIMIT @sample
            """, new { every, sample }, cancellationToken: cancellationToken));
        var decrypted = 0;
        var failed = new List<string>();
        foreach (var row in rows)
        {
            try
            {
                _ = encryption.Decrypt(row.Ciphertext, Aad(row.Path, (int)row.Version));
                decrypted++;
            }
            catch (System.Security.Cryptography.CryptographicException)
            {
                failed.Add($"{row.Path}#{row.Version}");
            }
        }
        return (decrypted, failed, total);
    }

    public Task<IReadOnlyList<string>> SampleKeyIdsAsync(CancellationToken cancellationToken) =>
        EnvelopeColumn.KeyIdsAsync(database, "vault_secret_versions", "ciphertext", 100, cancellationToken);

    private sealed class VersionRow
    {
        public long Version { get; init; }
        public byte[]? Ciphertext { get; init; }
        public long CreatedAt { get; init; }
        public long? DeletedAt { get; init; }
        public long? DestroyedAt { get; init; }
    }

    private sealed class SecretRow
    {
        public string Path { get; init; } = "";
        public long CurrentVersion { get; init; }
        public long MaxVersions { get; init; }
        public long? RotateEveryMs { get; init; }
        public long CreatedAt { get; init; }
        public long UpdatedAt { get; init; }
    }

    private sealed class VersionMetaRow
    {
        public long Version { get; init; }
        public long CreatedAt { get; init; }
        public string CreatedBy { get; init; } = "";
        public long? DeletedAt { get; init; }
        public long? DestroyedAt { get; init; }
    }
}

internal enum VersionChange
{
    Delete,
    Undelete,
    Destroy,
}

internal enum ReadStatus
{
    Ok,
    NotFound,
    Deleted,
    Destroyed,
}

internal sealed record ReadResult(ReadStatus Status, int Version, byte[]? Value, DateTimeOffset CreatedAt);

internal sealed record PutResult(bool Ok, int Version)
{
    public static PutResult Written(int version) => new(true, version);

    public static PutResult CasMismatch(int current) => new(false, current);
}

/// <summary>A secret's metadata and version history (never a value).</summary>
public sealed record SecretMetadata(string Path, int CurrentVersion, int MaxVersions, string? RotateEvery, DateTimeOffset? RotationDueAt, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, IReadOnlyList<SecretVersionInfo> Versions);

public sealed record SecretVersionInfo(int Version, DateTimeOffset CreatedAt, string CreatedBy, DateTimeOffset? DeletedAt, bool Destroyed);

/// <summary>A secret overdue for rotation.</summary>
public sealed record RotationDue(string Path, DateTimeOffset LastRotatedAt, string RotateEvery, DateTimeOffset DueAt);
