namespace Fundament.Media.Storage;

/// <summary>
/// Object storage for media content and derivatives. Keys are relative, slash-separated and
/// limited to <c>[a-z0-9._/-]</c> (<see cref="BlobKeys"/>); the store never sees a client's name.
/// A put is atomic: readers see the whole object or none of it, never a half-written one.
/// </summary>
public interface IBlobStore
{
    /// <summary>Where it is, for logs and the health answer (path or bucket, never a credential).</summary>
    string Describe { get; }

    /// <summary>Stores a local file under <paramref name="key"/>, replacing what was there.</summary>
    Task PutFileAsync(string key, string path, string contentType, CancellationToken cancellationToken);

    /// <summary>Stores a stream under <paramref name="key"/>, replacing what was there.</summary>
    Task PutAsync(string key, Stream content, string contentType, CancellationToken cancellationToken);

    /// <summary>The object's size, or null when it does not exist.</summary>
    Task<long?> SizeAsync(string key, CancellationToken cancellationToken);

    /// <summary>Opens the object from <paramref name="offset"/>, for <paramref name="length"/> bytes (or to the end). Null when it does not exist.</summary>
    Task<Stream?> OpenReadAsync(string key, long offset, long? length, CancellationToken cancellationToken);

    /// <summary>Deletes the object; no error when it is already gone.</summary>
    Task DeleteAsync(string key, CancellationToken cancellationToken);

    /// <summary>The object's file when the store is a local folder (tools read it in place); null for remote stores.</summary>
    string? LocalPath(string key) => null;

    /// <summary>Copies the object to a local file (for tools that need a path).</summary>
    async Task<bool> DownloadAsync(string key, string path, CancellationToken cancellationToken)
    {
        await using var source = await OpenReadAsync(key, 0, null, cancellationToken);
        if (source is null)
        {
            return false;
        }
        await using var target = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        await source.CopyToAsync(target, 1 << 16, cancellationToken);
        return true;
    }

    /// <summary>Cheap round trip for readiness.</summary>
    Task PingAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The keys under <paramref name="prefix"/> (empty for all), in no particular order. Objects
    /// being written (temporary files, unfinished multipart uploads) are not listed.
    /// </summary>
    IAsyncEnumerable<string> ListAsync(string prefix, CancellationToken cancellationToken);
}

/// <summary>The object keys media uses.</summary>
public static class BlobKeys
{
    /// <summary>Content-addressed original: <c>content/ab/cd/&lt;sha256&gt;</c>. One copy per content, whoever uploads it.</summary>
    public static string Content(string sha256) => $"content/{sha256[..2]}/{sha256[2..4]}/{sha256}";

    /// <summary>A derivative of one asset, e.g. <c>derivatives/&lt;id&gt;/thumb-small.webp</c>.</summary>
    public static string Derivative(string assetId, string name) => $"derivatives/{assetId}/{name}";

    public static bool IsValid(string key) =>
        key.Length is > 0 and <= 512 && !key.StartsWith('/') && !key.Contains("..", StringComparison.Ordinal) && !key.Contains("//", StringComparison.Ordinal)
        && key.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '_' or '-' or '/');

    public static string Check(string key) =>
        IsValid(key) ? key : throw new ArgumentException($"'{key}' is not a valid blob key", nameof(key));
}
