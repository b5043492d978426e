namespace Fundament.Core.Keys;

/// <summary>
/// Finds the master key: <c>Fundament:MasterKey</c> (base64), else <c>Fundament:MasterKeyFile</c>,
/// else, for the embedded SQLite setup only, <c>&lt;DataDir&gt;/master.key</c>, generated on first
/// start with mode 0600. A shared (PostgreSQL) deployment must be given the key so every replica
/// holds the same one.
/// </summary>
public static partial class MasterKeyLoader
{
    public const string DefaultFileName = "master.key";

    internal static MasterKey Load(FundamentOptions options, StorageOptions storage, ILogger logger)
    {
        if (!string.IsNullOrWhiteSpace(options.MasterKey))
        {
            return new MasterKey(DecodeBase64Key(options.MasterKey, "Fundament:MasterKey"));
        }
        if (!string.IsNullOrWhiteSpace(options.MasterKeyFile))
        {
            var path = Path.GetFullPath(options.MasterKeyFile);
            if (!File.Exists(path))
            {
                throw new StartupException($"Fundament:MasterKeyFile: the file '{path}' does not exist.");
            }
            return new MasterKey(ReadKeyFile(path, "Fundament:MasterKeyFile"));
        }
        if (storage.IsPostgres)
        {
            throw new StartupException(
                "Fundament:MasterKey or Fundament:MasterKeyFile is required with PostgreSQL storage: every replica must use the same key.");
        }

        var generatedPath = Path.Combine(options.FullDataDir, DefaultFileName);
        if (File.Exists(generatedPath))
        {
            WarnIfReadableByOthers(generatedPath, logger);
            return new MasterKey(ReadKeyFile(generatedPath, $"{generatedPath}"));
        }

        Directory.CreateDirectory(options.FullDataDir);
        var key = MasterKey.Generate();
        var streamOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            streamOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(generatedPath, streamOptions))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(Convert.ToBase64String(key.Key));
        }
        LogGenerated(logger, generatedPath);
        return key;
    }

    /// <summary>The key the settings name, or the data folder's existing key file; null when there is none. Never generates one.</summary>
    public static MasterKey? LoadConfigured(FundamentOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.MasterKey))
        {
            return new MasterKey(DecodeBase64Key(options.MasterKey, "Fundament:MasterKey"));
        }
        var path = !string.IsNullOrWhiteSpace(options.MasterKeyFile) ? Path.GetFullPath(options.MasterKeyFile) : Path.Combine(options.FullDataDir, DefaultFileName);
        if (!File.Exists(path))
        {
            if (!string.IsNullOrWhiteSpace(options.MasterKeyFile))
            {
                throw new StartupException($"Fundament:MasterKeyFile: the file '{path}' does not exist.");
            }
            return null;
        }
        return new MasterKey(ReadKeyFile(path, path));
    }

    /// <summary>Writes <paramref name="key"/> as base64 to a new file with mode 0600.</summary>
    public static void WriteKeyFile(string path, MasterKey key) => WriteKeyFile(path, [key]);

    /// <summary>Writes <paramref name="keys"/>, one base64 key per line, to a new file with mode 0600.</summary>
    public static void WriteKeyFile(string path, IEnumerable<MasterKey> keys)
    {
        var streamOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            streamOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using var stream = new FileStream(path, streamOptions);
        using var writer = new StreamWriter(stream);
        writer.Write(string.Join('\n', keys.Select(k => Convert.ToBase64String(k.Key))));
    }

    public static IReadOnlyList<MasterKey> LoadPrevious(FundamentOptions options) =>
        options.PreviousMasterKeys
            .Where(k => !string.IsNullOrWhiteSpace(k))
            .Select((k, i) => new MasterKey(DecodeBase64Key(k, $"Fundament:PreviousMasterKeys:{i}")))
            .ToList();

    private static byte[] ReadKeyFile(string path, string name)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length == MasterKey.KeySize)
        {
            return bytes;
        }
        return DecodeBase64Key(System.Text.Encoding.ASCII.GetString(bytes), name);
    }

    private static byte[] DecodeBase64Key(string value, string name)
    {
        byte[] key;
        try
        {
            key = Convert.FromBase64String(value.Trim());
        }
        catch (FormatException)
        {
            throw new StartupException($"{name} is not valid base64.");
        }
        if (key.Length != MasterKey.KeySize)
        {
            throw new StartupException($"{name} must decode to {MasterKey.KeySize} bytes (AES-256), not {key.Length}.");
        }
        return key;
    }

    private static void WarnIfReadableByOthers(string path, ILogger logger)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var mode = File.GetUnixFileMode(path);
        if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            LogLoosePermissions(logger, path);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Generated a new master key at {Path} (mode 0600). Back it up: without it no secret or signing key can be decrypted.")]
    private static partial void LogGenerated(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The master key file {Path} is readable by other users; chmod 600 it.")]
    private static partial void LogLoosePermissions(ILogger logger, string path);
}
