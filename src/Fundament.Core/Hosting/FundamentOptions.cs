namespace Fundament.Core.Hosting;

/// <summary>Top-level settings, section <c>Fundament</c>.</summary>
public sealed class FundamentOptions
{
    public const string SectionName = "Fundament";

    /// <summary>Folder for the embedded database, the generated master key and local files. Default <c>./data</c>.</summary>
    public string DataDir { get; set; } = "./data";

    /// <summary>Comma-separated roles this process runs (<c>all</c>, <c>control</c>, ...). Default <c>all</c>.</summary>
    public string Roles { get; set; } = "all";

    /// <summary>Console log format: <c>text</c> (default) or <c>json</c>.</summary>
    public string LogFormat { get; set; } = "text";

    /// <summary>The master key as base64 (32 bytes). Optional; see <see cref="MasterKeyFile"/>.</summary>
    public string? MasterKey { get; set; }

    /// <summary>Path of a file holding the master key (base64 or 32 raw bytes). Optional.</summary>
    public string? MasterKeyFile { get; set; }

    /// <summary>
    /// Earlier master keys (base64), kept only while <c>POST /api/v1/vault/rotate-master-key</c>
    /// re-wraps what they protect. Remove them once it reports nothing left.
    /// </summary>
    public string[] PreviousMasterKeys { get; set; } = [];

    /// <summary>Largest request body accepted by the JSON APIs, in bytes. Default 1 MiB.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1 << 20;

    public string FullDataDir => Path.GetFullPath(DataDir);
}

internal sealed class FundamentOptionsValidator : SettingsValidator<FundamentOptions>
{
    protected override string Section => FundamentOptions.SectionName;

    protected override void Check(FundamentOptions o, SettingsProblems problems)
    {
        problems.Required(o.DataDir);
        problems.Require(FundamentRoles.TryParse(o.Roles, out _, out _), o.Roles, "(--roles) names an unknown role; known: " + string.Join(", ", FundamentRoles.Known.Order()) + ".");
        problems.OneOf(o.LogFormat, ["text", "json"]);
        if (!string.IsNullOrWhiteSpace(o.MasterKey) && !string.IsNullOrWhiteSpace(o.MasterKeyFile))
        {
            problems.AddSentence($"Set only one of {problems.Key(nameof(o) + "." + nameof(o.MasterKey))} and {problems.Key(nameof(o) + "." + nameof(o.MasterKeyFile))}.");
        }
        problems.Between(o.MaxRequestBodyBytes, 1024, 1L << 30);
    }
}
