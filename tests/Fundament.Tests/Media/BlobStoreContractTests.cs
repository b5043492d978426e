using System.Security.Cryptography;
using Fundament.Media.Storage;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Media;

/// <summary>
/// What every media object store must do, run against local disk and a real S3-compatible server:
/// round trips, overwrites, ranges, missing objects, large multipart objects, key safety, and
/// atomic puts (a put that fails part-way leaves the previous object whole).
/// </summary>
public abstract class BlobStoreContractTests : IAsyncLifetime
{
    protected readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    protected IBlobStore Store { get; private set; } = null!;

    protected abstract Task<IBlobStore> CreateAsync();

    public async ValueTask InitializeAsync() => Store = await CreateAsync();

    public virtual ValueTask DisposeAsync()
    {
        (Store as IDisposable)?.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    private static byte[] Bytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private async Task<byte[]?> ReadAsync(string key, long offset = 0, long? length = null)
    {
        await using var stream = await Store.OpenReadAsync(key, offset, length, Ct);
        if (stream is null)
        {
            return null;
        }
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, Ct);
        return copy.ToArray();
    }

    [Fact]
    public async Task What_is_put_reads_back_whole_and_by_range()
    {
        var data = Bytes(300_000, 1);
        await Store.PutAsync("content/ab/cd/object", new MemoryStream(data), "image/jpeg", Ct);
        Assert.Equal(data.Length, await Store.SizeAsync("content/ab/cd/object", Ct));
        Assert.Equal(data, await ReadAsync("content/ab/cd/object"));
        Assert.Equal(data.AsSpan(1000, 500).ToArray(), await ReadAsync("content/ab/cd/object", 1000, 500));
        Assert.Equal(data.AsSpan(299_990).ToArray(), await ReadAsync("content/ab/cd/object", 299_990));
    }

    [Fact]
    public async Task A_put_replaces_and_a_delete_removes_and_missing_objects_are_null()
    {
        await Store.PutAsync("derivatives/x/thumb-small.webp", new MemoryStream(Bytes(10, 2)), "image/webp", Ct);
        var second = Bytes(20, 3);
        await Store.PutAsync("derivatives/x/thumb-small.webp", new MemoryStream(second), "image/webp", Ct);
        Assert.Equal(second, await ReadAsync("derivatives/x/thumb-small.webp"));
        await Store.DeleteAsync("derivatives/x/thumb-small.webp", Ct);
        await Store.DeleteAsync("derivatives/x/thumb-small.webp", Ct); // already gone: no error
        Assert.Null(await Store.SizeAsync("derivatives/x/thumb-small.webp", Ct));
        Assert.Null(await ReadAsync("derivatives/x/thumb-small.webp"));
        Assert.Null(await ReadAsync("never/was/here"));
    }

    [Fact]
    public async Task A_large_file_goes_up_whole_from_disk_and_from_an_unseekable_stream()
    {
        var data = Bytes(12 << 20, 4);
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(path, data, Ct);
            await Store.PutFileAsync("content/large/file", path, "video/mp4", Ct);
            Assert.Equal(SHA256.HashData(data), SHA256.HashData((await ReadAsync("content/large/file"))!));
            await Store.PutAsync("content/large/stream", new UnseekableStream(new MemoryStream(data)), "video/mp4", Ct);
            Assert.Equal(data.Length, await Store.SizeAsync("content/large/stream", Ct));
            Assert.True(await Store.DownloadAsync("content/large/stream", path, Ct));
            Assert.Equal(SHA256.HashData(data), SHA256.HashData(await File.ReadAllBytesAsync(path, Ct)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task A_put_that_fails_part_way_leaves_the_previous_object_whole()
    {
        var original = Bytes(50_000, 5);
        await Store.PutAsync("content/atomic/obj", new MemoryStream(original), "image/png", Ct);
        await Assert.ThrowsAnyAsync<Exception>(() => Store.PutAsync("content/atomic/obj", new FailingStream(Bytes(400_000, 6), failAfter: 200_000), "image/png", Ct));
        Assert.Equal(original, await ReadAsync("content/atomic/obj"));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("/absolute")]
    [InlineData("content/../../etc/passwd")]
    [InlineData("Upper/Case")]
    [InlineData("")]
    public async Task Keys_outside_the_safe_alphabet_are_refused(string key)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutAsync(key, new MemoryStream([1]), "image/png", Ct));
    }

    [Fact]
    public async Task The_store_answers_a_ping() => await Store.PingAsync(Ct);

    private sealed class UnseekableStream(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Reads like a client whose connection drops after <c>failAfter</c> bytes.</summary>
    private sealed class FailingStream(byte[] data, int failAfter) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position >= failAfter)
            {
                throw new IOException("connection reset by peer");
            }
            var n = Math.Min(count, Math.Min(failAfter, data.Length) - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

public sealed class LocalBlobStoreTests : BlobStoreContractTests
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "fundament-blobs", Guid.NewGuid().ToString("N"));

    protected override Task<IBlobStore> CreateAsync() => Task.FromResult<IBlobStore>(new LocalBlobStore(_root));

    [Fact]
    public async Task A_failed_put_leaves_no_temporary_file_behind()
    {
        await Assert.ThrowsAnyAsync<Exception>(() => Store.PutAsync("content/t/x", new ThrowingStream(), "image/png", Ct));
        Assert.Empty(Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories));
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    private sealed class ThrowingStream : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override int Read(byte[] buffer, int offset, int count) => throw new IOException("broken");
        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => 0;
        public override void SetLength(long value)
        {
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
        }
    }
}

public sealed class S3BlobStoreTests : BlobStoreContractTests
{
    // A low threshold so the 12 MiB test object really goes up as a multipart upload.
    protected override async Task<IBlobStore> CreateAsync() => new S3BlobStore(await TestS3.NewBucketAsync(multipartThreshold: 5L << 20));
}
