using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Hosting;

/// <summary>
/// The shipped alert rules (deploy/prometheus) and dashboards (deploy/grafana) watch only series
/// Fundament defines: a renamed or misspelt metric would otherwise leave a rule that never fires
/// and a panel that stays empty, silently. promtool checks and unit-tests the rules in CI.
/// </summary>
public sealed partial class ObservabilityAssetsTests(SqliteFundamentFactory factory) : IClassFixture<SqliteFundamentFactory>
{
    private static readonly string Deploy = Path.Combine(DeploymentFilesTests.RepoRoot(), "deploy");

    // How the Prometheus exporter turns an instrument into series: unit suffix, _total for counters, histogram parts.
    private static readonly string[] Suffixes = ["", "_total", "_seconds", "_seconds_bucket", "_seconds_sum", "_seconds_count", "_bucket", "_sum", "_count"];

    /// <summary>Every instrument the platform's code creates, as the exporter's base name (<c>fundament_jobs_depth</c>).</summary>
    private static HashSet<string> Defined()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(DeploymentFilesTests.RepoRoot(), "src"), "*.cs", SearchOption.AllDirectories))
        {
            foreach (Match match in Instrument().Matches(File.ReadAllText(file)))
            {
                names.Add(match.Groups[1].Value.Replace('.', '_'));
            }
        }
        return names;
    }

    private static bool IsDefined(string series, HashSet<string> defined) =>
        Suffixes.Any(s => series.EndsWith(s, StringComparison.Ordinal) && defined.Contains(series[..^s.Length]));

    private static IEnumerable<(string File, string Series)> Referenced()
    {
        var files = Directory.EnumerateFiles(Path.Combine(Deploy, "prometheus"), "*.yml").Where(f => !f.EndsWith(".test.yml", StringComparison.Ordinal))
            .Concat(Directory.EnumerateFiles(Path.Combine(Deploy, "grafana"), "*.json"));
        return files.SelectMany(f => Series().Matches(File.ReadAllText(f)).Select(m => (Path.GetFileName(f), m.Value))).Distinct();
    }

    [Fact]
    public void EveryRuleAndDashboard_WatchesOnlySeriesFundamentDefines()
    {
        var defined = Defined();
        Assert.Contains("fundament_gateway_request_duration", defined);
        var referenced = Referenced().ToList();
        Assert.Contains(referenced, r => r.File == "rules.yml");
        Assert.Contains(referenced, r => r.File == "fundament-overview.json");
        var unknown = referenced.Where(r => !IsDefined(r.Series, defined)).Select(r => $"{r.File}: {r.Series}").ToList();
        Assert.True(unknown.Count == 0, "not defined by any instrument: " + string.Join(", ", unknown));
    }

    [Fact]
    public async Task TheSeriesARealServerExposes_AreAllDefined_SoTheCheckAboveSeesWhatTheExporterWrites()
    {
        // A little traffic, so counters and histograms have points.
        await factory.LoginAsync("admin", FundamentFactory.AdminPassword);
        using var client = factory.CreateClient();
        var text = await client.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
        var exposed = text.Split('\n').Where(l => l.StartsWith("fundament_", StringComparison.Ordinal)).Select(l => Series().Match(l).Value).Distinct().ToList();
        Assert.NotEmpty(exposed);
        var defined = Defined();
        Assert.All(exposed, s => Assert.True(IsDefined(s, defined), $"{s} is exposed but the name mapping does not find its instrument"));
    }

    [Fact]
    public void TheDashboards_AreGrafanaDashboards_WithAQueryInEveryPanel()
    {
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Deploy, "grafana"), "*.json"))
        {
            var dashboard = JsonNode.Parse(File.ReadAllText(file))!;
            Assert.False(string.IsNullOrEmpty(dashboard["uid"]?.GetValue<string>()), file);
            var panels = dashboard["panels"]!.AsArray();
            Assert.NotEmpty(panels);
            Assert.All(panels, p => Assert.Contains("fundament_", p!["targets"]![0]!["expr"]!.GetValue<string>(), StringComparison.Ordinal));
        }
    }

    [GeneratedRegex("""Create(?:Counter|Histogram|ObservableGauge|ObservableCounter|UpDownCounter|ObservableUpDownCounter|Gauge)(?:<\w+>)?\(\s*"(fundament\.[a-z0-9_.]+)" """, RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex Instrument();

    [GeneratedRegex("fundament_[a-z0-9_]+")]
    private static partial Regex Series();
}
