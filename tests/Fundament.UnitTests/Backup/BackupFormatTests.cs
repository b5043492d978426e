using System.Text.Json;
using Fundament.Backup;
using Fundament.Core.Keys;

namespace Fundament.UnitTests.Backup;

public sealed class BackupFormatTests
{
    private const string Passphrase = "a passphrase of some length";

    [Fact]
    public void TheKeyEnvelope_OpensWithItsPassphrase_ToTheSameKeys_CurrentFirst()
    {
        var current = MasterKey.Generate();
        var previous = MasterKey.Generate();
        var envelope = KeyEnvelope.Seal(new MasterKeyRing(current, [previous]), Passphrase, iterations: 100_000);
        var json = JsonSerializer.Serialize(envelope);
        Assert.DoesNotContain(Convert.ToBase64String(current.Export()), json, StringComparison.Ordinal);

        var keys = JsonSerializer.Deserialize<KeyEnvelope>(json)!.Open(Passphrase);
        Assert.Equal([current.Id, previous.Id], keys.Select(k => k.Id));
        Assert.Equal(current.Export(), keys[0].Export());
        Assert.Equal(current.Id, envelope.KeyId);
    }

    [Fact]
    public void TheKeyEnvelope_RefusesAWrongPassphrase_AnAlteredCiphertext_AndAShortPassphrase()
    {
        var envelope = KeyEnvelope.Seal(new MasterKeyRing(MasterKey.Generate()), Passphrase, iterations: 100_000);
        Assert.Contains("passphrase is wrong", Assert.Throws<BackupException>(() => envelope.Open(Passphrase + "x")).Message, StringComparison.Ordinal);

        var ciphertext = Convert.FromBase64String(envelope.Ciphertext);
        ciphertext[0] ^= 1;
        Assert.Throws<BackupException>(() => (envelope with { Ciphertext = Convert.ToBase64String(ciphertext) }).Open(Passphrase));
        // Fewer iterations than the floor is not a key this binary made: refused rather than cheap to guess.
        Assert.Throws<BackupException>(() => (envelope with { Iterations = 1000 }).Open(Passphrase));
        Assert.Throws<BackupException>(() => KeyEnvelope.Seal(new MasterKeyRing(MasterKey.Generate()), "short"));
    }

    [Theory]
    [InlineData("/var/backups/fundament", true)]
    [InlineData("relative/folder", true)]
    [InlineData("s3://fundament-backups", true)]
    [InlineData("s3://fundament-backups/nightly/eu", true)]
    [InlineData("s3://ab", false)]
    [InlineData("s3://bucket/Upper/Case", false)]
    [InlineData("s3://bucket/../escape", false)]
    [InlineData("s3://AKIAEXAMPLE:secret@bucket/p", false)]
    [InlineData("s3://Upper-Bucket/p", false)]
    [InlineData("s3://-bucket/p", false)]
    [InlineData("https://example.com/backups", false)]
    [InlineData("", false)]
    public void Locations_AreAFolderOrAnS3BucketWithAPrefix(string text, bool valid)
    {
        Assert.Equal(valid, BackupLocation.TryParse(text, out _, out _));
    }

    [Fact]
    public void AnS3Location_SplitsIntoBucketAndPrefix()
    {
        Assert.True(BackupLocation.TryParse("s3://fundament-backups/nightly/", out var folder, out var bucket));
        Assert.Null(folder);
        Assert.Equal(("fundament-backups", "nightly/"), bucket);
    }

    [Fact]
    public void TheSchedule_IsFiveFieldCron_InUtc()
    {
        Assert.True(BackupSchedule.TryParse("0 3 * * *", out var schedule));
        Assert.Equal(new DateTimeOffset(2026, 12, 8, 3, 0, 0, TimeSpan.Zero), schedule!.Next(new DateTimeOffset(2026, 12, 7, 23, 0, 0, TimeSpan.Zero)));
        // Strictly after: at 03:00 the next one is tomorrow's.
        Assert.Equal(new DateTimeOffset(2026, 12, 9, 3, 0, 0, TimeSpan.Zero), schedule.Next(new DateTimeOffset(2026, 12, 8, 3, 0, 0, TimeSpan.Zero)));
        Assert.False(BackupSchedule.TryParse("every night", out _));
        Assert.False(BackupSchedule.TryParse("0 0 3 * * *", out _));
    }
}
