namespace Fundament.Media.Storage;

/// <summary>
/// Objects as files under one folder, one file per key. Writes go to a temporary file in the
/// same folder, are flushed to disk and then renamed over the target: a crash leaves either the
/// old object, the new one, or an orphan <c>.tmp-*</c> file that is never read and is swept.
/// </summary>
public sealed class LocalBlobStore : IBlobStore
{
    private const int BufferSize = 1 << 16;
    private readonly string _root;

    private readonly bool _private;

    /// <param name="root">The folder; created when missing.</param>
    /// <param name="privateFiles">Folders 0700 and files 0600 (backups: they hold the whole database).</param>
    public LocalBlobStore(string root, bool privateFiles = false)
    {
        _root = System.IO.Path.GetFullPath(root);
        _private = privateFiles && !OperatingSystem.IsWindows();
        CreateFolder(_root);
    }

    private void CreateFolder(string folder)
    {
        if (_private && !OperatingSystem.IsWindows())
        {
            // Level by level: CreateDirectory gives the mode to the last folder only, not to the parents it creates.
            var path = folder.StartsWith(_root, StringComparison.Ordinal) && folder != _root ? _root : System.IO.Path.GetDirectoryName(folder)!;
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            foreach (var segment in System.IO.Path.GetRelativePath(path, folder).Split(System.IO.Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
            {
                if (segment == ".")
                {
                    continue;
                }
                path = System.IO.Path.Combine(path, segment);
                Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }
        else
        {
            Directory.CreateDirectory(folder);
        }
    }

    public string Describe => $"local:{_root}";

    private string PathOf(string key) => System.IO.Path.Combine(_root, BlobKeys.Check(key).Replace('/', System.IO.Path.DirectorySeparatorChar));

    public async Task PutFileAsync(string key, string path, string contentType, CancellationToken cancellationToken)
    {
        await using var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await PutAsync(key, source, contentType, cancellationToken);
    }

    public async Task PutAsync(string key, Stream content, string contentType, CancellationToken cancellationToken)
    {
        var target = PathOf(key);
        var folder = System.IO.Path.GetDirectoryName(target)!;
        CreateFolder(folder);
        var temp = System.IO.Path.Combine(folder, $".tmp-{Guid.NewGuid():N}");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = BufferSize, Options = FileOptions.Asynchronous };
            if (_private && !OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            await using (var file = new FileStream(temp, options))
            {
                await content.CopyToAsync(file, BufferSize, cancellationToken);
                await file.FlushAsync(cancellationToken);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public string? LocalPath(string key)
    {
        var path = PathOf(key);
        return File.Exists(path) ? path : null;
    }

    public Task<long?> SizeAsync(string key, CancellationToken cancellationToken)
    {
        var info = new FileInfo(PathOf(key));
        return Task.FromResult<long?>(info.Exists ? info.Length : null);
    }

    public Task<Stream?> OpenReadAsync(string key, long offset, long? length, CancellationToken cancellationToken)
    {
        FileStream file;
        try
        {
            file = new FileStream(PathOf(key), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<Stream?>(null);
        }
        if (offset > 0)
        {
            file.Seek(offset, SeekOrigin.Begin);
        }
        return Task.FromResult<Stream?>(length is { } l ? new SubStream(file, l) : file);
    }

    public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        TryDelete(PathOf(key));
        return Task.CompletedTask;
    }

    public Task PingAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_root))
        {
            throw new DirectoryNotFoundException($"{_root} does not exist");
        }
        return Task.CompletedTask;
    }

    public async IAsyncEnumerable<string> ListAsync(string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask;
        if (!Directory.Exists(_root))
        {
            yield break;
        }
        foreach (var file in Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = System.IO.Path.GetRelativePath(_root, file).Replace(System.IO.Path.DirectorySeparatorChar, '/');
            if (key.StartsWith(prefix, StringComparison.Ordinal) && BlobKeys.IsValid(key) && !System.IO.Path.GetFileName(key).StartsWith(".tmp-", StringComparison.Ordinal))
            {
                yield return key;
            }
        }
    }

    /// <summary>Deletes temporary files left by a crash that are older than <paramref name="age"/>.</summary>
    public int SweepTemporaryFiles(TimeSpan age)
    {
        var swept = 0;
        foreach (var file in Directory.EnumerateFiles(_root, ".tmp-*", SearchOption.AllDirectories))
        {
            if (DateTime.UtcNow - File.GetLastWriteTimeUtc(file) > age)
            {
                TryDelete(file);
                swept++;
            }
        }
        return swept;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Gone already, or swept later.
        }
    }
}

/// <summary>A read-only window of <paramref name="length"/> bytes over a stream positioned at its start.</summary>
internal sealed class SubStream(Stream inner, long windowLength) : Stream
{
    private readonly long _length = windowLength;
    private long _left = windowLength;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;
    public override long Position { get => _length - _left; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_left <= 0)
        {
            return 0;
        }
        var read = inner.Read(buffer[..(int)Math.Min(buffer.Length, _left)]);
        _left -= read;
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_left <= 0)
        {
            return 0;
        }
        var read = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _left)], cancellationToken);
        _left -= read;
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }
}
