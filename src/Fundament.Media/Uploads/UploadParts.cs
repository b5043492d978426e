using System.Data.Common;
using Dapper;
using Fundament.Media.Storage;

namespace Fundament.Media.Uploads;

/// <summary>
/// Where an unfinished tus upload's bytes wait. <see cref="LocalUploadParts"/> keeps one part file
/// on the receiving node's disk (one node, or a shared folder); <see cref="StoreUploadParts"/> keeps
/// each received chunk as an object in the hot store, so any <c>media</c> replica can take the next
/// chunk and finish the upload (several replicas without sticky sessions, like tusd's S3 store).
/// </summary>
internal interface IUploadParts
{
    /// <summary><c>local</c> or <c>store</c>, for logs and docs.</summary>
    string Kind { get; }

    Task CreateAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// Starts taking the chunk that begins at <paramref name="offset"/>. Null when the upload's bytes
    /// are gone. Throws <see cref="UploadBusyException"/> when another request is writing it here,
    /// and <see cref="UploadMovedException"/> when <paramref name="stillAt"/> says the upload moved
    /// past <paramref name="offset"/> before this request got hold of its bytes.
    /// </summary>
    Task<UploadChunk?> BeginAsync(UploadRow upload, long offset, Func<CancellationToken, Task<bool>> stillAt, CancellationToken cancellationToken);

    /// <summary>
    /// The complete upload, hashed and sniffed, as a file to admit; null when its bytes are gone.
    /// The parts stay until <see cref="DeleteAsync"/>, so a failed admission can be tried again.
    /// </summary>
    Task<StagedContent?> StageAsync(UploadRow upload, CancellationToken cancellationToken);

    Task DeleteAsync(string id, CancellationToken cancellationToken);

    Task<int> SweepOrphansAsync(UploadStore uploads, CancellationToken cancellationToken);
}

/// <summary>One PATCH body on its way in.</summary>
internal abstract class UploadChunk : IAsyncDisposable
{
    /// <summary>Where the body's bytes are written, in order.</summary>
    public abstract Stream Body { get; }

    /// <summary>
    /// Makes the first <paramref name="written"/> bytes durable where the next request will find
    /// them. Returns what must run in the transaction that advances the upload's offset (or null).
    /// </summary>
    public abstract Task<Func<DbConnection, DbTransaction, Task>?> PersistAsync(long written, CancellationToken cancellationToken);

    /// <summary>The offset moved on without this chunk (another request got there first): forget it.</summary>
    public abstract Task AbandonAsync(CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();
}

/// <summary>Another request is writing this upload right now.</summary>
internal sealed class UploadBusyException() : Exception("Another request is writing this upload.");

/// <summary>A stored chunk's record was swept before it could be recorded (its put took longer than the grace).</summary>
internal sealed class UploadSegmentLostException(string key) : Exception($"upload segment {key} was swept while it was being stored");

/// <summary>Another request advanced the upload between this one reading its offset and getting hold of its bytes.</summary>
internal sealed class UploadMovedException() : Exception("The upload moved on meanwhile.");

/// <summary>A part file per upload in the upload folder of the node that received it.</summary>
internal sealed class LocalUploadParts(MediaService media) : IUploadParts
{
    public string Kind => "local";

    private string PartPath(string id) => Path.Combine(media.UploadFolder, Guid.Parse(id).ToString("N") + ".part");

    public async Task CreateAsync(string id, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(media.UploadFolder);
        await File.WriteAllBytesAsync(PartPath(id), [], cancellationToken);
    }

    public async Task<UploadChunk?> BeginAsync(UploadRow upload, long offset, Func<CancellationToken, Task<bool>> stillAt, CancellationToken cancellationToken)
    {
        FileStream file;
        try
        {
            // FileShare.None takes an exclusive lock, so two PATCHes of one upload cannot interleave.
            // Unbuffered: every block read from the client goes to the OS at once, so what arrived is on file if the process dies.
            file = new FileStream(PartPath(upload.Id), FileMode.Open, FileAccess.ReadWrite, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (IOException)
        {
            throw new UploadBusyException();
        }
        // The offset was read before the lock: a request that held the lock meanwhile may have
        // recorded more. Cutting the file back to the stale offset would lose those bytes.
        if (!await stillAt(cancellationToken))
        {
            await file.DisposeAsync();
            throw new UploadMovedException();
        }
        // Anything past the recorded offset is from a request that broke before it was recorded.
        file.SetLength(offset);
        file.Seek(offset, SeekOrigin.Begin);
        return new Chunk(file, offset);
    }

    public async Task<StagedContent?> StageAsync(UploadRow upload, CancellationToken cancellationToken)
    {
        var path = PartPath(upload.Id);
        return File.Exists(path) && new FileInfo(path).Length == upload.Length ? await media.SniffFileAsync(path, cancellationToken) : null;
    }

    public Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        MediaService.TryDelete(PartPath(id));
        return Task.CompletedTask;
    }

    /// <summary>
    /// Part files in this node's folder with no live upload behind them (expired and swept by
    /// another node, or left by a crash); every <c>media</c> node sweeps its own folder.
    /// </summary>
    public async Task<int> SweepOrphansAsync(UploadStore uploads, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(media.UploadFolder))
        {
            return 0;
        }
        var swept = 0;
        var cutoff = DateTime.UtcNow - TimeSpan.FromMinutes(10);
        foreach (var part in Directory.EnumerateFiles(media.UploadFolder, "*.part"))
        {
            if (File.GetLastWriteTimeUtc(part) > cutoff || !Guid.TryParseExact(Path.GetFileNameWithoutExtension(part), "N", out var guid))
            {
                continue;
            }
            if (!await uploads.IsLiveAsync(guid.ToString(), cancellationToken))
            {
                MediaService.TryDelete(part);
                swept++;
            }
        }
        return swept;
    }

    private sealed class Chunk(FileStream file, long offset) : UploadChunk
    {
        private bool _kept;

        public override Stream Body => file;

        public override async Task<Func<DbConnection, DbTransaction, Task>?> PersistAsync(long written, CancellationToken cancellationToken)
        {
            file.SetLength(offset + written);
            await file.FlushAsync(cancellationToken);
            file.Flush(flushToDisk: true);
            _kept = true;
            return null;
        }

        public override Task AbandonAsync(CancellationToken cancellationToken)
        {
            _kept = false;
            return Task.CompletedTask;
        }

        public override async ValueTask DisposeAsync()
        {
            if (!_kept)
            {
                file.SetLength(offset);
            }
            await file.DisposeAsync();
        }
    }
}

/// <summary>
/// Each chunk an object <c>uploads/&lt;id&gt;/&lt;offset&gt;-&lt;nonce&gt;</c> in the hot store,
/// recorded in <c>media_upload_segments</c> in the same transaction that advances the offset, so
/// the database alone says which objects make up the upload. A chunk is received into a local temp
/// file first (a broken connection still delivers what arrived), then stored, then recorded.
/// </summary>
internal sealed class StoreUploadParts(IDatabase database, MediaBlobStores stores, MediaService media, TimeProvider time) : IUploadParts
{
    /// <summary>
    /// Unrecorded segments older than this are leftovers of a crash between store and record. Long,
    /// so a slow put of a large chunk is never taken for one.
    /// </summary>
    private static readonly TimeSpan PendingGrace = TimeSpan.FromDays(1);

    /// <summary>Temp files of chunks this node is receiving or storing right now; the sweep leaves them alone.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _receiving = new(StringComparer.Ordinal);

    public string Kind => "store";

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    private IDatabase Database => database;

    private IBlobStore Hot => stores.Hot;

    public Task CreateAsync(string id, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<UploadChunk?> BeginAsync(UploadRow upload, long offset, Func<CancellationToken, Task<bool>> stillAt, CancellationToken cancellationToken)
    {
        // No lock to take here: the offset moves by a conditional update when the chunk is recorded,
        // so of two racing chunks one is recorded and the other is refused and deleted.
        Directory.CreateDirectory(media.UploadFolder);
        var temp = Path.Combine(media.UploadFolder, Guid.NewGuid().ToString("N") + ".chunk");
        _receiving[temp] = 0;
        // Unbuffered like the local part file: the body arrives in 64 KiB reads, each written through as it comes.
        var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
        return Task.FromResult<UploadChunk?>(new Chunk(this, upload.Id, offset, temp, file));
    }

    public async Task<StagedContent?> StageAsync(UploadRow upload, CancellationToken cancellationToken)
    {
        var segments = await SegmentsAsync(upload.Id, recordedOnly: true, cancellationToken);
        long next = 0;
        foreach (var segment in segments)
        {
            if (segment.Start != next)
            {
                return null;
            }
            next += segment.Length;
        }
        if (next != upload.Length)
        {
            return null;
        }
        await using var content = new SegmentStream(stores.Hot, segments);
        return await media.StageAsync(content, cancellationToken);
    }

    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        foreach (var segment in await SegmentsAsync(id, recordedOnly: false, cancellationToken))
        {
            await stores.Hot.DeleteAsync(segment.BlobKey, cancellationToken);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM media_upload_segments WHERE upload_id = @id", new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Segments no upload owns any more (its row is gone), segments stored but never recorded (a
    /// crash between the two), and temp files of chunks this node was receiving when it died.
    /// </summary>
    public async Task<int> SweepOrphansAsync(UploadStore uploads, CancellationToken cancellationToken)
    {
        List<Segment> orphans;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            orphans = (await connection.QueryAsync<Segment>(new CommandDefinition("""
                SELECT s.upload_id AS UploadId, s.start_offset AS Start, s.length AS Length, s.blob_key AS BlobKey FROM media_upload_segments s
                WHERE (s.recorded = @no AND s.created_at < @cutoff) OR NOT EXISTS (SELECT 1 FROM media_uploads u WHERE u.id = s.upload_id)
                LIMIT 1000
                """, new { no = false, cutoff = Now - (long)PendingGrace.TotalMilliseconds }, cancellationToken: cancellationToken))).ToList();
        }
        foreach (var orphan in orphans)
        {
            await stores.Hot.DeleteAsync(orphan.BlobKey, cancellationToken);
            await using var connection = await database.OpenAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition("DELETE FROM media_upload_segments WHERE blob_key = @BlobKey", orphan, cancellationToken: cancellationToken));
        }
        var swept = orphans.Count;
        if (Directory.Exists(media.UploadFolder))
        {
            var cutoff = DateTime.UtcNow - TimeSpan.FromMinutes(10);
            foreach (var temp in Directory.EnumerateFiles(media.UploadFolder, "*.chunk").Where(f => !_receiving.ContainsKey(f) && File.GetLastWriteTimeUtc(f) < cutoff))
            {
                MediaService.TryDelete(temp);
                swept++;
            }
        }
        return swept;
    }

    private async Task<List<Segment>> SegmentsAsync(string id, bool recordedOnly, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await connection.QueryAsync<Segment>(new CommandDefinition($"""
            SELECT upload_id AS UploadId, start_offset AS Start, length AS Length, blob_key AS BlobKey FROM media_upload_segments
            WHERE upload_id = @id {(recordedOnly ? "AND recorded = @yes" : "")} ORDER BY start_offset
            """, new { id, yes = true }, cancellationToken: cancellationToken))).ToList();
    }

    internal sealed class Segment
    {
        public string UploadId { get; set; } = "";
        public long Start { get; set; }
        public long Length { get; set; }
        public string BlobKey { get; set; } = "";
    }

    private sealed class Chunk(StoreUploadParts parts, string uploadId, long offset, string temp, FileStream file) : UploadChunk
    {
        private string? _key;

        public override Stream Body => file;

        public override async Task<Func<DbConnection, DbTransaction, Task>?> PersistAsync(long written, CancellationToken cancellationToken)
        {
            if (written == 0)
            {
                return null;
            }
            file.SetLength(written);
            await file.FlushAsync(cancellationToken);
            await file.DisposeAsync();
            var key = $"uploads/{Guid.Parse(uploadId):N}/{offset:D15}-{Guid.NewGuid():N}";
            // Noted before it is stored, so a crash between storing and recording leaves a row the sweeper finds.
            await using (var connection = await parts.Database.OpenAsync(cancellationToken))
            {
                await connection.ExecuteAsync(new CommandDefinition("""
                    INSERT INTO media_upload_segments (blob_key, upload_id, start_offset, length, recorded, created_at) VALUES (@key, @uploadId, @offset, @written, @no, @now)
                    """, new { key, uploadId, offset, written, no = false, now = parts.Now }, cancellationToken: cancellationToken));
            }
            await parts.Hot.PutFileAsync(key, temp, "application/octet-stream", cancellationToken);
            _key = key;
            return async (connection, transaction) =>
            {
                // Exactly this segment, or the offset must not move: an advance without its bytes behind it would corrupt the upload.
                if (await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE media_upload_segments SET recorded = @yes WHERE blob_key = @key", new { key, yes = true }, transaction, cancellationToken: cancellationToken)) != 1)
                {
                    throw new UploadSegmentLostException(key);
                }
            };
        }

        public override async Task AbandonAsync(CancellationToken cancellationToken)
        {
            if (_key is { } key)
            {
                _key = null;
                await parts.Hot.DeleteAsync(key, cancellationToken);
                await using var connection = await parts.Database.OpenAsync(cancellationToken);
                await connection.ExecuteAsync(new CommandDefinition("DELETE FROM media_upload_segments WHERE blob_key = @key", new { key }, cancellationToken: cancellationToken));
            }
        }

        public override async ValueTask DisposeAsync()
        {
            await file.DisposeAsync();
            MediaService.TryDelete(temp);
            parts._receiving.TryRemove(temp, out _);
        }
    }

    /// <summary>The recorded segments read one after another, each opened when the previous one ends.</summary>
    private sealed class SegmentStream(IBlobStore store, IReadOnlyList<Segment> segments) : Stream
    {
        private int _next;
        private Stream? _current;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                if (_current is null)
                {
                    if (_next == segments.Count)
                    {
                        return 0;
                    }
                    var segment = segments[_next++];
                    _current = await store.OpenReadAsync(segment.BlobKey, 0, null, cancellationToken)
                        ?? throw new InvalidOperationException($"upload segment {segment.BlobKey} is missing from the store");
                }
                var read = await _current.ReadAsync(buffer, cancellationToken);
                if (read > 0)
                {
                    return read;
                }
                await _current.DisposeAsync();
                _current = null;
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override async ValueTask DisposeAsync()
        {
            if (_current is not null)
            {
                await _current.DisposeAsync();
            }
            await base.DisposeAsync();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _current?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
