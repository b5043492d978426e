using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Fundament.Server.Telemetry;

internal static class TelemetryServiceCollectionExtensions
{
    /// <summary>Metrics (Prometheus at /metrics, OTLP when configured) and traces (OTLP when configured).</summary>
    public static IServiceCollection AddFundamentTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new TelemetryOptions();
        if (options.OtlpEndpoint is { Length: > 0 } endpoint && !Uri.TryCreate(endpoint, UriKind.Absolute, out _))
        {
            throw new Fundament.Core.Hosting.StartupException($"{TelemetryOptions.SectionName}:OtlpEndpoint must be an absolute URL.");
        }
        var otlp = !string.IsNullOrWhiteSpace(options.OtlpEndpoint) || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var version = typeof(TelemetryServiceCollectionExtensions).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(options.ServiceName, serviceVersion: version))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter("Fundament.*", "System.Runtime")
                    // Prometheus reserves a _count suffix for histograms and summaries (promtool
                    // rejects these gauges otherwise), so the three runtime counts get other names.
                    .AddView("dotnet.assembly.count", new MetricStreamConfiguration { Name = "dotnet.assemblies.loaded" })
                    .AddView("dotnet.process.cpu.count", new MetricStreamConfiguration { Name = "dotnet.process.cpus" })
                    .AddView("dotnet.timer.count", new MetricStreamConfiguration { Name = "dotnet.timers" })
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    // No cached scrape: a scrape shows the counts as they are (Prometheus scrapes rarely enough).
                    .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
                if (otlp)
                {
                    metrics.AddOtlpExporter(o => SetEndpoint(o, options));
                }
            })
            .WithTracing(tracing =>
            {
                tracing.AddSource("Fundament.*")
                    .AddAspNetCoreInstrumentation(o => o.Filter = context => !context.Request.Path.StartsWithSegments("/metrics") && !context.Request.Path.StartsWithSegments("/health"))
                    .AddHttpClientInstrumentation(o => o.EnrichWithHttpRequestMessage = (activity, request) =>
                    {
                        // Webhook and Slack URLs can be secrets: their spans keep the origin only.
                        if (request.HasSecretUrl() && request.RequestUri is { } uri)
                        {
                            activity.SetTag("url.full", $"{uri.Scheme}://{uri.Authority}/");
                            activity.SetTag("http.url", null);
                            activity.SetTag("url.path", null);
                            activity.SetTag("url.query", null);
                        }
                    });
                if (otlp)
                {
                    tracing.AddOtlpExporter(o => SetEndpoint(o, options));
                }
            });
        return services;
    }

    private static void SetEndpoint(OpenTelemetry.Exporter.OtlpExporterOptions exporter, TelemetryOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.OtlpEndpoint))
        {
            exporter.Endpoint = new Uri(options.OtlpEndpoint);
        }
    }
}
