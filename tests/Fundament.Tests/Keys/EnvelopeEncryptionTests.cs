using System.Security.Cryptography;
using System.Text;
using Fundament.Core.Keys;

namespace Fundament.Tests.Keys;

public sealed class EnvelopeEncryptionTests
{
    private static readonly byte[] Aad = Encoding.UTF8.GetBytes("secret:db/password:v1");

    [Fact]
    public void Encrypt_ThenDecrypt_RoundTrips_WithAFreshDataKeyEachTime()
    {
        var encryption = new EnvelopeEncryption(new MasterKeyRing(MasterKey.Generate()));
        var plaintext = Encoding.UTF8.GetBytes("hunter2-but-longer");

        var a = encryption.Encrypt(plaintext, Aad);
        var b = encryption.Encrypt(plaintext, Aad);

        Assert.NotEqual(a, b);
        Assert.Equal(plaintext, encryption.Decrypt(a, Aad));
        Assert.Equal(plaintext, encryption.Decrypt(b, Aad));
        Assert.Equal(-1, a.AsSpan().IndexOf(plaintext));
    }

    [Fact]
    public void Decrypt_UnderOtherAssociatedData_Fails()
    {
        var encryption = new EnvelopeEncryption(new MasterKeyRing(MasterKey.Generate()));
        var sealedItem = encryption.Encrypt([1, 2, 3], Aad);
        Assert.ThrowsAny<CryptographicException>(() => encryption.Decrypt(sealedItem, Encoding.UTF8.GetBytes("secret:db/password:v2")));
    }

    [Theory]
    [InlineData(0)]   // version
    [InlineData(3)]   // master key id
    [InlineData(30)]  // wrapped data key
    [InlineData(90)]  // data tag
    [InlineData(100)] // ciphertext
    public void Decrypt_OfATamperedEnvelope_Fails(int position)
    {
        var encryption = new EnvelopeEncryption(new MasterKeyRing(MasterKey.Generate()));
        var sealedItem = encryption.Encrypt(new byte[16], Aad);
        sealedItem[position] ^= 0x01;
        Assert.ThrowsAny<CryptographicException>(() => encryption.Decrypt(sealedItem, Aad));
    }

    [Fact]
    public void Rewrap_MovesToANewMasterKey_WithoutTheOldOneAfterwards()
    {
        var oldKey = MasterKey.Generate();
        var newKey = MasterKey.Generate();
        var before = new EnvelopeEncryption(new MasterKeyRing(oldKey));
        var sealedItem = before.Encrypt([9, 8, 7], Aad);

        var during = new EnvelopeEncryption(new MasterKeyRing(newKey, [oldKey]));
        var rewrapped = during.Rewrap(sealedItem);
        Assert.Equal(newKey.Id, EnvelopeEncryption.KeyIdOf(rewrapped));

        var after = new EnvelopeEncryption(new MasterKeyRing(newKey));
        Assert.Equal([9, 8, 7], after.Decrypt(rewrapped, Aad));
        Assert.ThrowsAny<CryptographicException>(() => after.Decrypt(sealedItem, Aad));
    }
}
