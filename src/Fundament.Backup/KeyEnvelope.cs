using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Fundament.Core.Keys;

namespace Fundament.Backup;

/// <summary>
/// <c>master-key.json</c>: the master keys (current and previous), encrypted with a passphrase
/// (PBKDF2-HMAC-SHA256, 600,000 iterations as OWASP recommends, then AES-256-GCM). Only written
/// with <c>--include-key</c>. The BCL has both primitives; see docs/adr/0020-backups.md.
/// </summary>
internal sealed record KeyEnvelope(string Kdf, int Iterations, string Salt, string Nonce, string Ciphertext, string Tag, string KeyId)
{
    public const int DefaultIterations = 600_000;
    private const string KdfName = "pbkdf2-hmac-sha256";
    private const string Aad = "fundament:backup:master-key";

    public static KeyEnvelope Seal(MasterKeyRing ring, string passphrase, int iterations = DefaultIterations)
    {
        if (passphrase.Length < 12)
        {
            throw new BackupException("the passphrase for --include-key must be at least 12 characters.");
        }
        var keys = new[] { ring.Current }.Concat(ring.PreviousIds.Select(id => ring.TryGet(id, out var k) ? k : null).OfType<MasterKey>())
            .Select(k => Convert.ToBase64String(k.Export())).ToArray();
        var plaintext = JsonSerializer.SerializeToUtf8Bytes(keys);
        var salt = RandomNumberGenerator.GetBytes(16);
        var nonce = RandomNumberGenerator.GetBytes(12);
        var key = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(passphrase), salt, iterations, HashAlgorithmName.SHA256, 32);
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[16];
        using (var aes = new AesGcm(key, 16))
        {
            aes.Encrypt(nonce, plaintext, ciphertext, tag, Encoding.UTF8.GetBytes(Aad));
        }
        CryptographicOperations.ZeroMemory(plaintext);
        CryptographicOperations.ZeroMemory(key);
        return new KeyEnvelope(KdfName, iterations, Convert.ToBase64String(salt), Convert.ToBase64String(nonce),
            Convert.ToBase64String(ciphertext), Convert.ToBase64String(tag), ring.Current.Id);
    }

    /// <summary>The keys, current first; throws <see cref="BackupException"/> for a wrong passphrase or an altered file.</summary>
    public IReadOnlyList<MasterKey> Open(string passphrase)
    {
        if (Kdf != KdfName || Iterations is < 100_000 or > 10_000_000)
        {
            throw new BackupException($"{BackupInfo.KeyName}: unknown key derivation '{Kdf}' ({Iterations} iterations).");
        }
        var key = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(passphrase), Convert.FromBase64String(Salt), Iterations, HashAlgorithmName.SHA256, 32);
        var ciphertext = Convert.FromBase64String(Ciphertext);
        var plaintext = new byte[ciphertext.Length];
        try
        {
            using var aes = new AesGcm(key, 16);
            aes.Decrypt(Convert.FromBase64String(Nonce), ciphertext, Convert.FromBase64String(Tag), plaintext, Encoding.UTF8.GetBytes(Aad));
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new BackupException($"{BackupInfo.KeyName}: the passphrase is wrong, or the file was altered.");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
        var keys = JsonSerializer.Deserialize<string[]>(plaintext)!.Select(k => new MasterKey(Convert.FromBase64String(k))).ToList();
        CryptographicOperations.ZeroMemory(plaintext);
        return keys;
    }
}
