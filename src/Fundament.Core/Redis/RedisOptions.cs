namespace Fundament.Core.Redis;

/// <summary>Section <c>Fundament:Redis</c>: the shared Redis used by scaled-out roles (gateway rate limits).</summary>
public sealed class RedisOptions
{
    public const string SectionName = "Fundament:Redis";

    /// <summary>
    /// A StackExchange.Redis configuration string, e.g. <c>redis:6379,password=...,ssl=true</c>.
    /// Empty (default): Redis is not used and limits are per process.
    /// </summary>
    public string? Configuration { get; set; }

    /// <summary>Prefix of every key Fundament writes, so one Redis can serve several installations. Default <c>fundament:</c>.</summary>
    public string KeyPrefix { get; set; } = "fundament:";

    /// <summary>How long a command may take before it counts as failed. Default 500 ms; an edge cannot wait longer.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMilliseconds(500);

    public bool Enabled => !string.IsNullOrWhiteSpace(Configuration);
}
