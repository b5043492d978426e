using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Fundament.Identity.Passwords;

/// <summary>
/// PBKDF2-HMAC-SHA512 (the runtime's, backed by the platform crypto library) with a 16-byte salt
/// and a per-hash iteration count, stored as <c>pbkdf2-sha512$&lt;iterations&gt;$&lt;salt&gt;$&lt;hash&gt;</c>.
/// Hashes made with fewer iterations than configured are upgraded at the next login. Why not
/// Argon2id: docs/adr/0003-password-hashing.md.
/// </summary>
internal sealed class PasswordHasher(IOptions<IdentityOptions> options)
{
    private const string Scheme = "pbkdf2-sha512";
    private const int SaltSize = 16;
    private const int HashSize = 32;

    private readonly Lazy<string> _dummy = new(() => Hash(Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)), options.Value.PasswordHashIterations));

    public string Hash(string password) => Hash(password, options.Value.PasswordHashIterations);

    public bool Verify(string password, string stored, out bool needsRehash)
    {
        needsRehash = false;
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != Scheme || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations))
        {
            return false;
        }
        var salt = Convert.FromBase64String(parts[2]);
        var expected = Convert.FromBase64String(parts[3]);
        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA512, expected.Length);
        var ok = CryptographicOperations.FixedTimeEquals(actual, expected);
        needsRehash = ok && iterations < options.Value.PasswordHashIterations;
        return ok;
    }

    /// <summary>Spends the time of a real verification, so an unknown username answers as slowly as a known one.</summary>
    public void VerifyDummy(string password) => Verify(password, _dummy.Value, out _);

    private static string Hash(string password, int iterations)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltSize);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA512, HashSize);
        return string.Create(CultureInfo.InvariantCulture, $"{Scheme}${iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}");
    }
}
