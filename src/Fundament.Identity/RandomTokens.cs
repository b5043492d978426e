using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;

namespace Fundament.Identity;

/// <summary>
/// High-entropy secrets (refresh tokens, client secrets, API keys, reset tokens). They are random
/// 256-bit values, so a single SHA-256 is the right way to store them: nothing to brute force,
/// and the lookup by hash stays an index seek.
/// </summary>
internal static class RandomTokens
{
    public static string New(int bytes = 32) => WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(bytes));

    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    public static string NewId() => Guid.CreateVersion7().ToString();
}
