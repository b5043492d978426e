using System.Data.Common;
using System.Runtime.CompilerServices;
using Dapper;
using Fundament.Core.Backup;
using Fundament.Core.Storage;

namespace Fundament.Media.Storage;

/// <summary>
/// What a backup copies of media: every asset's original (content-addressed, so its key is its
/// SHA-256) in the tier the snapshot records, and every derivative. Segments of uploads still in
/// progress are left out, and their rows are dropped from a restored database: a client restarts such an upload.
/// </summary>
internal sealed class MediaBackupSource(MediaBlobStores stores) : IBackupBlobSource
{
    public const string HotStore = "media-hot";
    public const string ColdStore = "media-cold";

    public IReadOnlyList<string> Stores { get; } = [HotStore, ColdStore];

    public async IAsyncEnumerable<BackupBlobReference> ReferencedAsync(DbConnection snapshot, DbTransaction? transaction, SqlDialect dialect,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var originals = await snapshot.QueryAsync<(string Sha256, string Tier)>(new CommandDefinition(
            "SELECT DISTINCT sha256, tier FROM media_assets ORDER BY sha256, tier", transaction: transaction, cancellationToken: cancellationToken));
        foreach (var (sha256, tier) in originals)
        {
            yield return new BackupBlobReference(tier == MediaTier.Cold ? ColdStore : HotStore, BlobKeys.Content(sha256), sha256);
        }
        var derivatives = await snapshot.QueryAsync<string>(new CommandDefinition(
            "SELECT blob_key FROM media_derivatives ORDER BY blob_key", transaction: transaction, cancellationToken: cancellationToken));
        foreach (var key in derivatives)
        {
            yield return new BackupBlobReference(HotStore, key, null);
        }
    }

    public Task<Stream?> OpenReadAsync(string store, string key, CancellationToken cancellationToken) =>
        Of(store).OpenReadAsync(key, 0, null, cancellationToken);

    public Task WriteAsync(string store, string key, string path, CancellationToken cancellationToken) =>
        Of(store).PutFileAsync(key, path, "application/octet-stream", cancellationToken);

    public async Task PrepareRestoredAsync(DbConnection restored, SqlDialect dialect, CancellationToken cancellationToken)
    {
        // Their segments are not in the backup: a resumed upload would fail at the end. Gone, the client's HEAD gets 404 and it starts over.
        await restored.ExecuteAsync(new CommandDefinition("DELETE FROM media_upload_segments", cancellationToken: cancellationToken));
        await restored.ExecuteAsync(new CommandDefinition("DELETE FROM media_uploads WHERE asset_id IS NULL", cancellationToken: cancellationToken));
    }

    public Task DeleteAsync(string store, string key, CancellationToken cancellationToken) =>
        Of(store).DeleteAsync(key, cancellationToken);

    public async Task<bool> IsEmptyAsync(string store, CancellationToken cancellationToken)
    {
        await foreach (var _ in Of(store).ListAsync("", cancellationToken))
        {
            return false;
        }
        return true;
    }

    public string Describe(string store) => Of(store).Describe;

    private IBlobStore Of(string store) => store switch
    {
        HotStore => stores.Hot,
        ColdStore => stores.Cold,
        _ => throw new ArgumentOutOfRangeException(nameof(store), store, "not a media store"),
    };
}
