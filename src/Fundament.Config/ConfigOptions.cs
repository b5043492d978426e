namespace Fundament.Config;

/// <summary>Section <c>Fundament:Config</c>.</summary>
public sealed class ConfigOptions
{
    public const string SectionName = "Fundament:Config";

    /// <summary>Largest value, in bytes of JSON. Default 65536.</summary>
    public int MaxValueBytes { get; set; } = 64 * 1024;

    /// <summary>Versions of history kept per key. Default 100.</summary>
    public int HistoryPerKey { get; set; } = 100;
}

internal sealed class ConfigOptionsValidator : SettingsValidator<ConfigOptions>
{
    protected override string Section => ConfigOptions.SectionName;

    protected override void Check(ConfigOptions o, SettingsProblems problems)
    {
        problems.Between(o.MaxValueBytes, 1024, 1024 * 1024);
        problems.Between(o.HistoryPerKey, 1, 100_000);
    }
}
