using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Fundament.Audit;

/// <summary>
/// The chain's hash: HMAC-SHA256, keyed with a random key kept envelope-encrypted in the database,
/// over a canonical encoding of the entry and the previous entry's hash. Someone who can write the
/// database but does not hold the master key cannot forge a consistent chain after editing it,
/// which a plain SHA-256 chain would allow.
/// </summary>
internal static class AuditChain
{
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    /// <summary>The MAC of the chain head: its position and the hash it points at, so a head rewound over a deleted tail does not verify.</summary>
    public static string HeadMac(ReadOnlySpan<byte> key, long seq, string hash)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteStringValue("head");
            writer.WriteNumberValue(seq);
            writer.WriteStringValue(hash);
            writer.WriteEndArray();
        }
        return Convert.ToHexStringLower(HMACSHA256.HashData(key, buffer.WrittenSpan));
    }

    /// <summary>The MAC of a pending entry (everything but its place in the chain, which it gets when it is linked).</summary>
    public static string PendingMac(ReadOnlySpan<byte> key, AuditEntry entry) => Mac(key, entry, pending: true);

    public static string Hash(ReadOnlySpan<byte> key, AuditEntry entry) => Mac(key, entry, pending: false);

    private static string Mac(ReadOnlySpan<byte> key, AuditEntry entry, bool pending)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteNumberValue(pending ? 2 : 1); // encoding version; 2 marks a pending entry's MAC
            writer.WriteNumberValue(pending ? 0 : entry.Seq);
            writer.WriteStringValue(entry.Id);
            writer.WriteNumberValue(entry.At);
            writer.WriteStringValue(entry.Actor);
            WriteNullable(writer, entry.ActorName);
            writer.WriteStringValue(entry.Action);
            WriteNullable(writer, entry.Target);
            writer.WriteStringValue(entry.Outcome);
            WriteNullable(writer, entry.SourceIp);
            WriteNullable(writer, entry.Details);
            writer.WriteStringValue(pending ? "" : entry.PrevHash);
            writer.WriteEndArray();
        }
        return Convert.ToHexStringLower(HMACSHA256.HashData(key, buffer.WrittenSpan));
    }

    private static void WriteNullable(Utf8JsonWriter writer, string? value)
    {
        if (value is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            writer.WriteStringValue(value);
        }
    }
}
