using Fundament.Media.Storage;

namespace Fundament.Backup;

/// <summary>
/// Where backups live: a local folder or <c>s3://bucket/prefix</c>. Each backup is a folder of its
/// own under it (<c>fundament-20261207-031500-4f2a/</c>), complete once its <c>backup.json</c> is there.
/// </summary>
internal static class BackupLocation
{
    public static bool TryParse(string text, out string? folder, out (string Bucket, string Prefix)? bucket)
    {
        folder = null;
        bucket = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        if (text.StartsWith("s3://", StringComparison.OrdinalIgnoreCase))
        {
            var rest = text["s3://".Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            var name = slash < 0 ? rest : rest[..slash];
            var prefix = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
            // S3's bucket naming rules: also keeps credentials (user:secret@) out of an address that is shown and logged.
            if (name.Length is < 3 or > 63 || !name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-')
                || !char.IsAsciiLetterOrDigit(name[0]) || !char.IsAsciiLetterOrDigit(name[^1]) || (prefix.Length > 0 && !BlobKeys.IsValid(prefix)))
            {
                return false;
            }
            bucket = (name, prefix.Length == 0 ? "" : prefix + "/");
            return true;
        }
        if (text.Contains("://", StringComparison.Ordinal))
        {
            return false;
        }
        folder = Path.GetFullPath(text);
        return true;
    }

    /// <summary>The store rooted at <paramref name="text"/>; throws <see cref="BackupException"/> for an address it cannot use.</summary>
    public static IBlobStore Open(string text, BackupOptions options)
    {
        if (!TryParse(text, out var folder, out var bucket))
        {
            throw new BackupException($"'{text}' is neither a folder nor s3://bucket/prefix (lower-case letters, digits, '.', '_', '-' and '/').");
        }
        if (folder is not null)
        {
            return new LocalBlobStore(folder, privateFiles: true);
        }
        var s3 = options.S3;
        return new S3BlobStore(new S3StoreOptions
        {
            ServiceUrl = s3.ServiceUrl,
            Region = s3.Region,
            AccessKey = s3.AccessKey,
            SecretKey = s3.SecretKey,
            ForcePathStyle = s3.ForcePathStyle,
            MultipartThresholdBytes = s3.MultipartThresholdBytes,
            Bucket = bucket!.Value.Bucket,
            Prefix = bucket.Value.Prefix,
        });
    }
}

/// <summary>A backup, restore or verification that cannot go on; the message is one line for the operator.</summary>
public sealed class BackupException(string message, Exception? inner = null) : Exception(message, inner);
