using System.Text.RegularExpressions;

namespace Fundament.Cluster;

/// <summary>Section <c>Fundament:Cluster</c>.</summary>
public sealed class ClusterOptions
{
    public const string SectionName = "Fundament:Cluster";

    /// <summary>
    /// This node's id: the holder named on its leases and its row in <c>GET /api/v1/cluster/nodes</c>.
    /// Default <c>&lt;host&gt;-&lt;8 hex&gt;</c>, new for every start. Set it only to a name that is
    /// unique among the nodes running at once (a StatefulSet pod name); 1-128 letters, digits,
    /// <c>.</c>, <c>_</c> or <c>-</c>.
    /// </summary>
    public string? NodeId { get; set; }

    /// <summary>Whether this process heartbeats (every node should). Default true.</summary>
    public bool HeartbeatEnabled { get; set; } = true;

    /// <summary>How often a node records that it is alive. Default 10s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A node whose last heartbeat is older than this is <c>suspect</c>. Default 30s (three heartbeats).</summary>
    public TimeSpan SuspectAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A node whose last heartbeat is older than this is <c>gone</c> (one that stopped cleanly is gone at once). Default 2 minutes.</summary>
    public TimeSpan GoneAfter { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>A gone node's row is removed this long after its last heartbeat. Default 7 days.</summary>
    public TimeSpan ForgetAfter { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Whether <paramref name="id"/> has the form of a node id.</summary>
    public static bool IsNodeId(string id) => ClusterOptionsValidator.NodeIdPattern().IsMatch(id);
}

internal sealed partial class ClusterOptionsValidator : SettingsValidator<ClusterOptions>
{
    protected override string Section => ClusterOptions.SectionName;

    protected override void Check(ClusterOptions o, SettingsProblems problems)
    {
        problems.Require(o.NodeId is null || NodeIdPattern().IsMatch(o.NodeId), o.NodeId, "must be 1-128 letters, digits, '.', '_' or '-'.");
        problems.Between(o.HeartbeatInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(5));
        problems.Require(o.SuspectAfter >= o.HeartbeatInterval * 2, o.SuspectAfter, "must be at least two HeartbeatIntervals.");
        problems.Require(o.GoneAfter > o.SuspectAfter, o.GoneAfter, "must be longer than SuspectAfter.");
        problems.Require(o.ForgetAfter >= o.GoneAfter, o.ForgetAfter, "must not be shorter than GoneAfter.");
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,128}$")]
    internal static partial Regex NodeIdPattern();
}
