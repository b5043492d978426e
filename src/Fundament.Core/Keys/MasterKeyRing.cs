using System.Security.Cryptography;
using System.Text;

namespace Fundament.Core.Keys;

/// <summary>
/// The master key(s) that wrap every data key. <see cref="Current"/> wraps new items; older keys
/// stay here only to unwrap items not yet re-wrapped after a rotation.
/// </summary>
public sealed class MasterKeyRing
{
    private readonly Dictionary<string, MasterKey> _byId;

    public MasterKeyRing(MasterKey current, IEnumerable<MasterKey>? previous = null)
    {
        Current = current;
        _byId = new Dictionary<string, MasterKey>(StringComparer.Ordinal) { [current.Id] = current };
        foreach (var key in previous ?? [])
        {
            _byId.TryAdd(key.Id, key);
        }
    }

    public MasterKey Current { get; }

    public bool TryGet(string id, out MasterKey key) => _byId.TryGetValue(id, out key!);

    /// <summary>Ids of the earlier keys still held for unwrapping.</summary>
    public IReadOnlyList<string> PreviousIds => _byId.Keys.Where(id => id != Current.Id).ToList();
}

/// <summary>An AES-256 key and its public identifier (a truncated hash, safe to store and log).</summary>
public sealed class MasterKey
{
    public const int KeySize = 32;

    public MasterKey(byte[] key)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException($"A master key is {KeySize} bytes.", nameof(key));
        }
        Key = key;
        var hash = SHA256.HashData([.. Encoding.ASCII.GetBytes("fundament-master-key-id:"), .. key]);
        IdBytes = hash.AsSpan(0, 8).ToArray();
        Id = Convert.ToHexStringLower(IdBytes);
    }

    internal byte[] Key { get; }

    /// <summary>A copy of the key's bytes, for sealing it into a backup with a passphrase (<c>--include-key</c>). Never log it.</summary>
    public byte[] Export() => Key.ToArray();

    internal byte[] IdBytes { get; }

    public string Id { get; }

    public static MasterKey Generate() => new(RandomNumberGenerator.GetBytes(KeySize));
}
