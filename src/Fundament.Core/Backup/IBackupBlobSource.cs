using System.Data.Common;
using Fundament.Core.Storage;

namespace Fundament.Core.Backup;

/// <summary>
/// A module whose data lives partly outside the database (media content and derivatives) tells a
/// backup which objects a database snapshot refers to, and gives access to the stores they live in.
/// A backup copies exactly those objects, so what it holds is consistent with its database: nothing
/// the snapshot does not know, and every object it does (see docs/operations.md, "Backup").
/// </summary>
public interface IBackupBlobSource
{
    /// <summary>Names of the stores, e.g. <c>media-hot</c>; they name folders in a backup.</summary>
    IReadOnlyList<string> Stores { get; }

    /// <summary>
    /// The objects <paramref name="snapshot"/> refers to. The connection reads one consistent
    /// snapshot (a copy of the SQLite file, or the PostgreSQL transaction pg_dump exports).
    /// </summary>
    IAsyncEnumerable<BackupBlobReference> ReferencedAsync(DbConnection snapshot, DbTransaction? transaction, SqlDialect dialect, CancellationToken cancellationToken);

    /// <summary>Opens an object for reading; null when it is not there.</summary>
    Task<Stream?> OpenReadAsync(string store, string key, CancellationToken cancellationToken);

    /// <summary>Writes a restored object from a local file.</summary>
    Task WriteAsync(string store, string key, string path, CancellationToken cancellationToken);

    /// <summary>
    /// Runs on the restored database before anything serves it: drops what refers to objects a
    /// backup does not carry (uploads in progress), so clients start those again.
    /// </summary>
    Task PrepareRestoredAsync(DbConnection restored, SqlDialect dialect, CancellationToken cancellationToken);

    /// <summary>Deletes a restored object again (a restore that failed half-way undoes what it wrote).</summary>
    Task DeleteAsync(string store, string key, CancellationToken cancellationToken);

    /// <summary>Whether the store holds no object at all (a restore refuses to write into a used one).</summary>
    Task<bool> IsEmptyAsync(string store, CancellationToken cancellationToken);

    /// <summary>Where the store is, for messages (a path or a bucket, never a credential).</summary>
    string Describe(string store);
}

/// <summary>One object a database snapshot refers to. <paramref name="Sha256"/> is known when the key is the content's hash.</summary>
public sealed record BackupBlobReference(string Store, string Key, string? Sha256);

/// <summary>
/// A check that a restored copy of the platform is usable, run by <c>fundament backup verify</c>
/// against the scratch restore: the audit chain verifies, a sample of secrets decrypts.
/// </summary>
public interface IBackupCheck
{
    /// <summary>What it checks, e.g. <c>audit chain</c>.</summary>
    string Name { get; }

    Task<BackupCheckResult> RunAsync(CancellationToken cancellationToken);
}

/// <summary>The outcome of one <see cref="IBackupCheck"/>; <paramref name="Detail"/> is one line for the report.</summary>
public sealed record BackupCheckResult(bool Passed, string Detail);
