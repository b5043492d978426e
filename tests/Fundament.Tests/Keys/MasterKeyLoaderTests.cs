using Fundament.Core.Hosting;
using Fundament.Core.Keys;
using Fundament.Core.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Fundament.Tests.Keys;

public sealed class MasterKeyLoaderTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_folder, true);

    private FundamentOptions Options(string? key = null, string? file = null)
    {
        Directory.CreateDirectory(_folder);
        return new FundamentOptions { DataDir = _folder, MasterKey = key, MasterKeyFile = file };
    }

    [Fact]
    public void EmbeddedFirstStart_GeneratesAKeyFileReadableOnlyByTheOwner_AndReusesIt()
    {
        var first = MasterKeyLoader.Load(Options(), new StorageOptions(), NullLogger.Instance);
        var path = Path.Combine(_folder, "master.key");
        Assert.True(File.Exists(path));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }

        var second = MasterKeyLoader.Load(Options(), new StorageOptions(), NullLogger.Instance);
        Assert.Equal(first.Id, second.Id);
    }

    [Fact]
    public void ConfiguredKey_IsUsed_AndABadOneNamesTheSetting()
    {
        var raw = Convert.ToBase64String(new byte[32]);
        Assert.Equal(new MasterKey(new byte[32]).Id, MasterKeyLoader.Load(Options(key: raw), new StorageOptions(), NullLogger.Instance).Id);

        var notBase64 = Assert.Throws<StartupException>(() => MasterKeyLoader.Load(Options(key: "not base64!"), new StorageOptions(), NullLogger.Instance));
        Assert.Contains("Fundament:MasterKey", notBase64.Message, StringComparison.Ordinal);
        var tooShort = Assert.Throws<StartupException>(() => MasterKeyLoader.Load(Options(key: Convert.ToBase64String(new byte[16])), new StorageOptions(), NullLogger.Instance));
        Assert.Contains("32 bytes", tooShort.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeyFile_IsRead_AndAMissingOneNamesTheSetting()
    {
        Directory.CreateDirectory(_folder);
        var path = Path.Combine(_folder, "custom.key");
        File.WriteAllText(path, Convert.ToBase64String(new byte[32]) + "\n");
        Assert.Equal(new MasterKey(new byte[32]).Id, MasterKeyLoader.Load(Options(file: path), new StorageOptions(), NullLogger.Instance).Id);

        var missing = Assert.Throws<StartupException>(() => MasterKeyLoader.Load(Options(file: path + ".nope"), new StorageOptions(), NullLogger.Instance));
        Assert.Contains("Fundament:MasterKeyFile", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SharedPostgres_RequiresAnExplicitKey()
    {
        var error = Assert.Throws<StartupException>(() => MasterKeyLoader.Load(Options(), new StorageOptions { Provider = "postgres" }, NullLogger.Instance));
        Assert.Contains("Fundament:MasterKey", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_folder, "master.key")));
    }
}
