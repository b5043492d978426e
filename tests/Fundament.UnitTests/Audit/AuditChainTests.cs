using Fundament.Audit;

namespace Fundament.UnitTests.Audit;

public sealed class AuditChainTests
{
    private static readonly byte[] Key = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];

    private static AuditEntry Entry(long seq = 1, string action = "secret.read", string prev = AuditChain.Genesis, string? details = "{\"path\":\"app/db\"}") => new()
    {
        Seq = seq,
        Id = "01JAUDIT",
        At = 1_700_000_000_000,
        Actor = "user:1",
        ActorName = "alice",
        Action = action,
        Target = "secret:app/db",
        Outcome = "success",
        SourceIp = "10.0.0.1",
        Details = details,
        PrevHash = prev,
    };

    [Fact]
    public void TheHash_IsStable_AndKeyed()
    {
        var hash = AuditChain.Hash(Key, Entry());

        Assert.Equal(hash, AuditChain.Hash(Key, Entry()));
        Assert.Equal(64, hash.Length);
        Assert.NotEqual(hash, AuditChain.Hash([.. Key.Reverse()], Entry()));
    }

    [Fact]
    public void ChangingAnyPart_ChangesTheHash()
    {
        var original = AuditChain.Hash(Key, Entry());

        Assert.NotEqual(original, AuditChain.Hash(Key, Entry(seq: 2)));
        Assert.NotEqual(original, AuditChain.Hash(Key, Entry(action: "secret.write")));
        Assert.NotEqual(original, AuditChain.Hash(Key, Entry(prev: new string('1', 64))));
        Assert.NotEqual(original, AuditChain.Hash(Key, Entry(details: null)));
    }

    [Fact]
    public void APendingEntrysMac_DoesNotDependOnItsPlace_ButNeverEqualsALinkedHash()
    {
        var pending = AuditChain.PendingMac(Key, Entry(seq: 1));

        Assert.Equal(pending, AuditChain.PendingMac(Key, Entry(seq: 7, prev: new string('2', 64))));
        Assert.NotEqual(pending, AuditChain.Hash(Key, Entry(seq: 0, prev: "")));
    }

    [Fact]
    public void TheHeadMac_BindsPositionAndHash()
    {
        var head = AuditChain.HeadMac(Key, 5, "abc");

        Assert.NotEqual(head, AuditChain.HeadMac(Key, 4, "abc"));
        Assert.NotEqual(head, AuditChain.HeadMac(Key, 5, "abd"));
    }
}
