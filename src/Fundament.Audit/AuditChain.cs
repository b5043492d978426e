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

    public static string Hash(ReadOnlySpan<byte> key, AuditEntry entry)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteNumberValue(1); // encoding version
            writer.WriteNumberValue(entry.Seq);
            writer.WriteStringValue(entry.Id);
            writer.WriteNumberValue(entry.At);
            writer.WriteStringValue(entry.Actor);
            WriteNullable(writer, entry.ActorName);
            writer.WriteStringValue(entry.Action);
            WriteNullable(writer, entry.Target);
            writer.WriteStringValue(entry.Outcome);
            WriteNullable(writer, entry.SourceIp);
            WriteNullable(writer, entry.Details);
            writer.WriteStringValue(entry.PrevHash);
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
