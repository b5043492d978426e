using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;

namespace Fundament.Cluster;

/// <summary>
/// Keeps this node's row fresh: recorded before the node serves (a start-up task, which refuses an
/// id a live node already uses), then every <see cref="ClusterOptions.HeartbeatInterval"/>. On a
/// clean stop, once every other hosted service has stopped (so no duty is still running under its
/// leases), the node marks itself gone and gives its leases up. Each pass also reads the whole
/// membership for <c>fundament_cluster_nodes{role,status}</c>.
/// </summary>
internal sealed partial class NodeHeartbeat : BackgroundService, IStartupTask, IHostedLifecycleService
{
    private readonly NodeStore _store;
    private readonly NodeIdentity _node;
    private readonly IOptions<ClusterOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<NodeHeartbeat> _logger;
    private volatile IReadOnlyList<NodeRow> _snapshot = [];

    public NodeHeartbeat(NodeStore store, NodeIdentity node, IOptions<ClusterOptions> options, TimeProvider time, IMeterFactory meters, ILogger<NodeHeartbeat> logger)
    {
        _store = store;
        _node = node;
        _options = options;
        _time = time;
        _logger = logger;
        meters.Create("Fundament.Cluster").CreateObservableGauge("fundament.cluster.nodes", Observe, "{node}",
            "Nodes by role and status (alive, suspect, gone), as this node last read the membership; every role is reported, zero included.");
    }

    // After the migrations and every module's seeding: the node is in the table before it serves.
    public int Order => 1000;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (await _store.LiveTwinAsync(_node, cancellationToken) is { } twin)
        {
            throw new StartupException(
                $"Fundament:Cluster:NodeId '{_node.Id}' is in use by a live node on host {twin.Host} (started {DateTimeOffset.FromUnixTimeMilliseconds(twin.StartedAt):u}, last heartbeat " +
                $"{DateTimeOffset.FromUnixTimeMilliseconds(twin.HeartbeatAt):u}). Two nodes under one id would both hold every lease it holds. Give each node its own id, " +
                "or leave the setting out; a node restarted after a crash under the same id starts once its old heartbeat is older than Fundament:Cluster:SuspectAfter.");
        }
        await PassAsync(cancellationToken);
    }

    /// <summary>One heartbeat and one read of the membership.</summary>
    public async Task PassAsync(CancellationToken cancellationToken)
    {
        await _store.HeartbeatAsync(_node, cancellationToken);
        _snapshot = await _store.NodesAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.Value.HeartbeatInterval, _time, stoppingToken);
                await PassAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The database is down or slow: other nodes will see this one turn suspect, which is the truth.
                LogHeartbeatFailed(_logger, ex);
            }
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // After every hosted service has stopped: the evaluators and publishers no longer act under the leases given up here.
    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        try
        {
            // Its own short budget: a shutdown whose other services used up the host's timeout still leaves cleanly.
            using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _store.LeaveAsync(_node.Id, budget.Token);
            LogLeft(_logger, _node.Id);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogLeaveFailed(_logger, ex);
        }
    }

    private IEnumerable<Measurement<int>> Observe()
    {
        var rows = _snapshot;
        // Against the clock, not the time of the last read: a node cut off from the database sees everyone age, itself included.
        var now = _store.Now;
        var options = _options.Value;
        foreach (var role in FundamentRoles.Concrete)
        {
            int alive = 0, suspect = 0, gone = 0;
            foreach (var row in rows)
            {
                if (!row.RoleList.Contains(role))
                {
                    continue;
                }
                switch (row.Status(now, options))
                {
                    case NodeStatus.Alive: alive++; break;
                    case NodeStatus.Suspect: suspect++; break;
                    default: gone++; break;
                }
            }
            yield return new(alive, new("role", role), new("status", NodeStatus.Alive));
            yield return new(suspect, new("role", role), new("status", NodeStatus.Suspect));
            yield return new(gone, new("role", role), new("status", NodeStatus.Gone));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster heartbeat failed; the next one tries again")]
    private static partial void LogHeartbeatFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} left the cluster and gave up its leases")]
    private static partial void LogLeft(ILogger logger, string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record this node's leaving; the others will see it gone after Fundament:Cluster:GoneAfter")]
    private static partial void LogLeaveFailed(ILogger logger, Exception exception);
}
