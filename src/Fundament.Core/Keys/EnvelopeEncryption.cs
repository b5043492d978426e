using System.Security.Cryptography;

namespace Fundament.Core.Keys;

/// <summary>
/// Envelope encryption for everything stored at rest: each item gets a fresh random AES-256 data
/// key, the item is sealed with AES-256-GCM under that key (with caller-supplied associated data
/// binding it to where it lives), and the data key is itself sealed under the master key.
/// </summary>
/// <remarks>
/// Layout (version 1):
/// <c>[1 version][8 master key id][12 wrap nonce][32 wrapped data key][16 wrap tag][12 nonce][16 tag][ciphertext]</c>.
/// The header (version and key id) is the associated data of the key wrap, so neither can be
/// swapped without failing authentication.
/// </remarks>
public sealed class EnvelopeEncryption(MasterKeyRing keys)
{
    private const byte Version1 = 1;
    private const int IdSize = 8;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int HeaderSize = 1 + IdSize;
    private const int WrappedKeyOffset = HeaderSize + NonceSize;
    private const int WrapTagOffset = WrappedKeyOffset + MasterKey.KeySize;
    private const int DataNonceOffset = WrapTagOffset + TagSize;
    private const int DataTagOffset = DataNonceOffset + NonceSize;
    private const int Overhead = DataTagOffset + TagSize;

    public string CurrentKeyId => keys.Current.Id;

    public byte[] Encrypt(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var output = new byte[Overhead + plaintext.Length];
        Span<byte> dataKey = stackalloc byte[MasterKey.KeySize];
        RandomNumberGenerator.Fill(dataKey);
        try
        {
            WrapInto(output, dataKey, keys.Current);
            var nonce = output.AsSpan(DataNonceOffset, NonceSize);
            RandomNumberGenerator.Fill(nonce);
            using var aes = new AesGcm(dataKey, TagSize);
            aes.Encrypt(nonce, plaintext, output.AsSpan(Overhead), output.AsSpan(DataTagOffset, TagSize), associatedData);
            return output;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <exception cref="CryptographicException">The envelope was altered, belongs elsewhere, or its master key is unknown.</exception>
    public byte[] Decrypt(ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> associatedData)
    {
        Span<byte> dataKey = stackalloc byte[MasterKey.KeySize];
        try
        {
            Unwrap(envelope, dataKey);
            var plaintext = new byte[envelope.Length - Overhead];
            using var aes = new AesGcm(dataKey, TagSize);
            aes.Decrypt(envelope.Slice(DataNonceOffset, NonceSize), envelope[Overhead..], envelope.Slice(DataTagOffset, TagSize), plaintext, associatedData);
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new CryptographicException("The encrypted item failed authentication.");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>Master key id an envelope was wrapped with, or null when it is not an envelope.</summary>
    public static string? KeyIdOf(ReadOnlySpan<byte> envelope) =>
        envelope.Length >= Overhead && envelope[0] == Version1 ? Convert.ToHexStringLower(envelope.Slice(1, IdSize)) : null;

    /// <summary>
    /// Re-wraps the data key under the current master key without touching the ciphertext: the
    /// cheap, online half of a master key rotation.
    /// </summary>
    public byte[] Rewrap(ReadOnlySpan<byte> envelope)
    {
        Span<byte> dataKey = stackalloc byte[MasterKey.KeySize];
        try
        {
            Unwrap(envelope, dataKey);
            var output = envelope.ToArray();
            WrapInto(output, dataKey, keys.Current);
            return output;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    private static void WrapInto(byte[] output, ReadOnlySpan<byte> dataKey, MasterKey master)
    {
        output[0] = Version1;
        master.IdBytes.CopyTo(output.AsSpan(1, IdSize));
        var wrapNonce = output.AsSpan(HeaderSize, NonceSize);
        RandomNumberGenerator.Fill(wrapNonce);
        using var wrap = new AesGcm(master.Key, TagSize);
        wrap.Encrypt(wrapNonce, dataKey, output.AsSpan(WrappedKeyOffset, MasterKey.KeySize), output.AsSpan(WrapTagOffset, TagSize), output.AsSpan(0, HeaderSize));
    }

    private void Unwrap(ReadOnlySpan<byte> envelope, Span<byte> dataKey)
    {
        if (envelope.Length < Overhead || envelope[0] != Version1)
        {
            throw new CryptographicException("The encrypted item is not a version 1 envelope.");
        }
        var keyId = Convert.ToHexStringLower(envelope.Slice(1, IdSize));
        if (!keys.TryGet(keyId, out var master))
        {
            throw new CryptographicException($"The encrypted item was wrapped by master key {keyId}, which this process does not hold.");
        }
        try
        {
            using var wrap = new AesGcm(master.Key, TagSize);
            wrap.Decrypt(envelope.Slice(HeaderSize, NonceSize), envelope.Slice(WrappedKeyOffset, MasterKey.KeySize), envelope.Slice(WrapTagOffset, TagSize), dataKey, envelope[..HeaderSize]);
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new CryptographicException("The data key of the encrypted item failed authentication.");
        }
    }
}
