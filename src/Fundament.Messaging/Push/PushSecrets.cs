using System.Text;
using Fundament.Core.Keys;
using Fundament.Messaging.Storage;

namespace Fundament.Messaging.Push;

/// <summary>Push groups' signing secrets, envelope-encrypted in <c>messaging_groups.push_secret</c> and bound to their group.</summary>
internal sealed class PushSecrets(IDatabase database, EnvelopeEncryption encryption) : IEnvelopeHolder
{
    public string Name => "push group secrets";

    private static byte[] Aad(string topic, string group) => Encoding.UTF8.GetBytes($"fundament:messaging:push-secret:{topic}\n{group}");

    public byte[] Seal(string topic, string group, string secret) => encryption.Encrypt(Encoding.UTF8.GetBytes(secret), Aad(topic, group));

    public string Open(GroupDefinition group) =>
        Encoding.UTF8.GetString(encryption.Decrypt(group.PushSecret ?? throw new InvalidOperationException($"group {group.Topic}/{group.Name} has no push secret"), Aad(group.Topic, group.Name)));

    public Task<RewrapResult> RewrapAsync(EnvelopeEncryption current, CancellationToken cancellationToken) =>
        EnvelopeColumn.RewrapAsync(database, current, "messaging_groups", ["topic", "name"], "push_secret", null, cancellationToken);
}
