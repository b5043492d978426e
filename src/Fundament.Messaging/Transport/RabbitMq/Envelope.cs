using System.Buffers;
using System.Text.Json;
using Fundament.Messaging.Storage;

namespace Fundament.Messaging.Transport.RabbitMq;

/// <summary>
/// What one AMQP message carries: one publish, or a whole batch, so a batch is confirmed (and
/// lost) as a unit, all or nothing. JSON: <c>{"at": publishedAtMs, "m": [{"id", "seq", "key", "h", "b"}]}</c>,
/// the body (<c>b</c>) and headers (<c>h</c>) as the publisher's JSON.
/// </summary>
internal static class Envelope
{
    public const string ContentType = "application/vnd.fundament.messages+json";

    public static byte[] Write(IReadOnlyList<(OutgoingMessage Message, long Sequence)> messages, long publishedAt)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + messages.Sum(m => m.Message.Body.Length + (m.Message.Headers?.Length ?? 0) + m.Message.Id.Length + 64));
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            writer.WriteStartObject();
            writer.WriteNumber("at", publishedAt);
            writer.WriteStartArray("m");
            foreach (var (message, sequence) in messages)
            {
                writer.WriteStartObject();
                writer.WriteString("id", message.Id);
                writer.WriteNumber("seq", sequence);
                if (message.Key is not null)
                {
                    writer.WriteString("key", message.Key);
                }
                if (message.Headers is not null)
                {
                    writer.WritePropertyName("h");
                    writer.WriteRawValue(message.Headers, skipInputValidation: true);
                }
                writer.WritePropertyName("b");
                writer.WriteRawValue(message.Body, skipInputValidation: true);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The messages of an envelope, or null when it is not one (then it is rejected to the dead-letter queue).</summary>
    public static (IReadOnlyList<(OutgoingMessage Message, long Sequence)> Messages, long PublishedAt)? Read(ReadOnlyMemory<byte> body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            var messages = new List<(OutgoingMessage, long)>();
            foreach (var m in root.GetProperty("m").EnumerateArray())
            {
                var headers = m.TryGetProperty("h", out var h) && h.ValueKind == JsonValueKind.Object ? h.GetRawText() : null;
                var key = m.TryGetProperty("key", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
                messages.Add((new OutgoingMessage(m.GetProperty("id").GetString()!, key, m.GetProperty("b").GetRawText(), headers), m.GetProperty("seq").GetInt64()));
            }
            return messages.Count == 0 ? null : (messages, root.GetProperty("at").GetInt64());
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }
}
