using System.Text.Json;

namespace Fundament.Cli;

/// <summary>
/// <c>~/.config/fundament/contexts.json</c> (or <c>$FUND_CONFIG_DIR</c>): named servers with their
/// tokens, the current one, written with mode 0600 through a temporary file and a rename.
/// </summary>
internal sealed class CliConfig
{
    public string? Current { get; set; }

    public Dictionary<string, CliContext> Contexts { get; set; } = new(StringComparer.Ordinal);

    public static string Folder =>
        Environment.GetEnvironmentVariable("FUND_CONFIG_DIR") is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config", "fundament");

    private static string FilePath => Path.Combine(Folder, "contexts.json");

    public static CliConfig Load()
    {
        if (!File.Exists(FilePath))
        {
            return new CliConfig();
        }
        try
        {
            return JsonSerializer.Deserialize<CliConfig>(File.ReadAllText(FilePath), CliJson.Options) ?? new CliConfig();
        }
        catch (JsonException ex)
        {
            throw new CliException(ExitCodes.Usage, $"{FilePath} is not readable ({ex.Message}); fix or delete it and log in again.");
        }
    }

    public void Save() => WritePrivate(FilePath, JsonSerializer.Serialize(this, CliJson.Indented));

    /// <summary>
    /// An exclusive lock on <c>contexts.lock</c> across fund processes, for a read-modify-write of the saved tokens (a refresh) or of
    /// <c>uploads.json</c>. Waits up to 30 s.
    /// </summary>
    public static async Task<IDisposable> LockAsync(CancellationToken cancellationToken)
    {
        var path = Path.Combine(Folder, "contexts.lock");
        if (!Directory.Exists(Folder))
        {
            WritePrivate(Path.Combine(Folder, ".created"), "");
        }
        for (var i = 0; ; i++)
        {
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }
                return new FileStream(path, options);
            }
            catch (IOException) when (i < 300)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    /// <summary>Writes a file only its owner can read, atomically.</summary>
    public static void WritePrivate(string path, string content)
    {
        var folder = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(folder))
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(folder);
            }
            else
            {
                Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(temp, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(content);
        }
        File.Move(temp, path, overwrite: true);
    }
}

/// <summary>One server: where it is, and how this user signs in to it.</summary>
internal sealed class CliContext
{
    public required string Server { get; set; }

    public string? Username { get; set; }

    public string? AccessToken { get; set; }

    public string? RefreshToken { get; set; }

    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>An API key instead of tokens (<c>fund login --api-key-stdin</c>).</summary>
    public string? ApiKey { get; set; }
}

internal static class CliJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static readonly JsonSerializerOptions Indented = new(JsonSerializerDefaults.Web) { WriteIndented = true };
}

/// <summary>Exit codes scripts can rely on (docs: <c>fund --help</c> and docs/cli.md).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The server refused or failed the request (a problem document), or a check failed.</summary>
    public const int Failed = 1;

    /// <summary>Wrong usage: unknown command, missing argument, bad local file.</summary>
    public const int Usage = 2;

    /// <summary>Not logged in, the session expired, or the caller lacks the permission (401, 403).</summary>
    public const int Unauthorized = 3;

    /// <summary>The thing named does not exist (404).</summary>
    public const int NotFound = 4;

    /// <summary>The server could not be reached.</summary>
    public const int Unreachable = 5;

    /// <summary>Interrupted (Ctrl-C); an upload resumes where it stopped when the same command runs again.</summary>
    public const int Interrupted = 130;
}

/// <summary>A failure to report as one line on stderr with <see cref="ExitCode"/>.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
