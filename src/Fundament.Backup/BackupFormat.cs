using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fundament.Backup;

/// <summary>
/// <c>backup.json</c>, written last: what the backup holds and where it came from. Its presence
/// marks the backup complete; a folder without it is an interrupted backup, ignored and pruned.
/// </summary>
internal sealed record BackupInfo
{
    public const int CurrentFormat = 1;
    public const string FileName = "backup.json";
    public const string ManifestName = "manifest.jsonl";
    public const string KeyName = "master-key.json";
    public const string MacName = "backup.mac";

    public int Format { get; init; } = CurrentFormat;

    public required string Name { get; init; }

    public required string FundamentVersion { get; init; }

    public required DateTimeOffset StartedAt { get; init; }

    public required DateTimeOffset CompletedAt { get; init; }

    public required BackupDatabase Database { get; init; }

    /// <summary>Schema version per module (<c>fundament_schema_migrations</c>): a restore refuses a backup from a newer binary.</summary>
    public required IReadOnlyDictionary<string, int> Migrations { get; init; }

    /// <summary>Rows per table in the snapshot; verification compares the restored copy against them.</summary>
    public required IReadOnlyDictionary<string, long> Tables { get; init; }

    public required BackupBlobs Blobs { get; init; }

    public required BackupKey MasterKey { get; init; }
}

internal sealed record BackupDatabase(string Provider, string File, long Size, string Sha256);

/// <summary>Objects copied (in <c>manifest.jsonl</c>), and those the snapshot named that were gone by the time they were copied.</summary>
internal sealed record BackupBlobs(long Count, long Bytes, IReadOnlyList<string> Missing)
{
    /// <summary>The SHA-256 of <c>manifest.jsonl</c>, so a truncated or altered manifest is noticed.</summary>
    public string? ManifestSha256 { get; init; }

    public long ManifestSize { get; init; }
}

/// <summary>The id of the master key the database was sealed with (never the key), and whether <c>master-key.json</c> holds it, encrypted.</summary>
internal sealed record BackupKey(string Id, bool Included);

/// <summary>One line of <c>manifest.jsonl</c>.</summary>
internal sealed record ManifestEntry(string Store, string Key, long Size, string Sha256)
{
    public string Path => $"blobs/{Store}/{Key}";
}

internal static class BackupJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static readonly JsonSerializerOptions Line = new(JsonSerializerDefaults.Web);
}

/// <summary>
/// <c>backup.mac</c>: HMAC-SHA256 of <c>backup.json</c>'s bytes under a key derived (HKDF) from the
/// master key the backup was sealed with. <c>backup.json</c> holds the checksums of the database
/// file and the manifest, which holds every object's: one MAC authenticates the whole backup, so
/// restore and verify refuse a backup that this key did not write before loading anything from it.
/// </summary>
internal static class BackupSeal
{
    public static string Compute(Fundament.Core.Keys.MasterKey key, byte[] info)
    {
        var macKey = System.Security.Cryptography.HKDF.DeriveKey(System.Security.Cryptography.HashAlgorithmName.SHA256, key.Export(), 32,
            info: System.Text.Encoding.ASCII.GetBytes("fundament:backup:mac"));
        return Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(macKey, info));
    }

    public static bool Verify(IEnumerable<Fundament.Core.Keys.MasterKey> keys, byte[] info, string? mac) =>
        mac is not null && keys.Any(k => System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.ASCII.GetBytes(Compute(k, info)), System.Text.Encoding.ASCII.GetBytes(mac.Trim())));
}
