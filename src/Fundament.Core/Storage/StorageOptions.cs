namespace Fundament.Core.Storage;

/// <summary>Settings for the shared relational store, section <c>Fundament:Storage</c>.</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Fundament:Storage";

    /// <summary><c>sqlite</c> (default, <c>&lt;DataDir&gt;/fundament.db</c>) or <c>postgres</c>.</summary>
    public string Provider { get; set; } = "sqlite";

    /// <summary>
    /// Connection string, read from <c>ConnectionStrings:Fundament</c>. Required for <c>postgres</c>;
    /// for <c>sqlite</c> it overrides the file under the data folder.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>Seconds a single statement may run. Default 30.</summary>
    public int CommandTimeoutSeconds { get; set; } = 30;

    public bool IsPostgres => string.Equals(Provider, "postgres", StringComparison.OrdinalIgnoreCase);
}
