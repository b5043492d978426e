namespace Fundament.Server.Telemetry;

/// <summary>Section <c>Fundament:Telemetry</c>.</summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Fundament:Telemetry";

    /// <summary>
    /// OTLP endpoint for traces and metrics (e.g. <c>http://otel-collector:4317</c>). Empty (default)
    /// disables OTLP unless the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> variable is set.
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary><c>service.name</c> resource attribute. Default <c>fundament</c>.</summary>
    public string ServiceName { get; set; } = "fundament";
}
