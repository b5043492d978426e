using System.Security.Cryptography;
using System.Text;
using StandardWebhooks;

namespace Fundament.Core.Security;

/// <summary>
/// Signatures receivers can verify with any Standard Webhooks library
/// (https://www.standardwebhooks.com): <c>webhook-id</c> (the delivery id, the same on every retry),
/// <c>webhook-timestamp</c> (Unix seconds) and <c>webhook-signature</c>:
/// <c>v1,&lt;base64 HMAC-SHA256 of "id.timestamp.body"&gt;</c>, one per valid secret, space-separated,
/// so a receiver holding either secret of a rotation verifies. Secrets are
/// <c>whsec_&lt;base64 key&gt;</c>; a secret from before that form is used as its UTF-8 bytes.
/// </summary>
public static class WebhookSignatures
{
    public const string SecretPrefix = "whsec_";
    public const string IdHeader = "webhook-id";
    public const string TimestampHeader = "webhook-timestamp";
    public const string SignatureHeader = "webhook-signature";

    /// <summary>A new secret: 32 random bytes in the Standard Webhooks form.</summary>
    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>Why a secret someone chose cannot be used, or null.</summary>
    public static string? Problem(string secret)
    {
        if (secret.StartsWith(SecretPrefix, StringComparison.Ordinal))
        {
            return TryKey(secret, out var key) && key.Length is >= 24 and <= 64 ? null : "a whsec_ secret must hold 24 to 64 bytes in base64.";
        }
        return secret.Length is >= 16 and <= 200 && !secret.Any(char.IsWhiteSpace) ? null : "secret must be whsec_<base64> or 16-200 characters without spaces.";
    }

    /// <summary>The HMAC key of a secret.</summary>
    public static byte[] KeyOf(string secret) => TryKey(secret, out var key) ? key : Encoding.UTF8.GetBytes(secret);

    /// <summary>The <c>webhook-signature</c> value: one <c>v1,</c> signature per secret.</summary>
    public static string Signature(IEnumerable<string> secrets, string id, DateTimeOffset at, string body) =>
        string.Join(' ', secrets.Select(secret => new StandardWebhook(KeyOf(secret)).Sign(id, at, body)));

    private static bool TryKey(string secret, out byte[] key)
    {
        key = [];
        if (!secret.StartsWith(SecretPrefix, StringComparison.Ordinal))
        {
            return false;
        }
        try
        {
            key = Convert.FromBase64String(secret[SecretPrefix.Length..]);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
