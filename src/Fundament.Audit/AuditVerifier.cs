using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;

namespace Fundament.Audit;

/// <summary>
/// Verifies the chain every <see cref="AuditOptions.VerifyInterval"/> on one control node at a time
/// (lease <c>audit-verifier</c>) and reports <c>fundament_audit_chain_valid</c> (1 valid, 0 not),
/// <c>fundament_audit_chain_verified_entries</c> and
/// <c>fundament_audit_chain_last_verified_seconds</c> (Unix time of the last completed walk). A
/// chain that does not verify is logged as critical with the reason.
/// </summary>
internal sealed partial class AuditVerifier : BackgroundService
{
    private const string LeaseName = "audit-verifier";

    private readonly AuditLog _log;
    private readonly LeaseStore _leases;
    private readonly IOptions<AuditOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<AuditVerifier> _logger;
    private AuditVerification? _last;
    private long _lastAt;

    public AuditVerifier(AuditLog log, LeaseStore leases, IOptions<AuditOptions> options, TimeProvider time, IMeterFactory meters, ILogger<AuditVerifier> logger)
    {
        _log = log;
        _leases = leases;
        _options = options;
        _time = time;
        _logger = logger;
        var meter = meters.Create("Fundament.Audit.Verifier");
        meter.CreateObservableGauge("fundament.audit.chain.valid", () => _last is { } v ? [new Measurement<int>(v.Valid ? 1 : 0)] : Array.Empty<Measurement<int>>(),
            "{result}", "1 when this node's last verification of the whole chain found it intact, 0 when it did not; absent before the first.");
        meter.CreateObservableGauge("fundament.audit.chain.verified_entries", () => _last is { } v ? [new Measurement<long>(v.Entries)] : Array.Empty<Measurement<long>>(),
            "{entry}", "Entries the last verification walked.");
        meter.CreateObservableGauge("fundament.audit.chain.last_verified", () => _last is null ? Array.Empty<Measurement<long>>() : [new Measurement<long>(_lastAt)],
            "s", "Unix time of the last completed verification on this node.");
    }

    /// <summary>One verification, whoever holds the lease; returns its result.</summary>
    public async Task<AuditVerification> VerifyAsync(CancellationToken cancellationToken)
    {
        var result = await _log.VerifyAsync(cancellationToken);
        _last = result;
        _lastAt = _time.GetUtcNow().ToUnixTimeSeconds();
        if (!result.Valid)
        {
            LogInvalid(_logger, result.FirstInvalidSeq, result.Reason);
        }
        return result;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = _options.Value.VerifyInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // Held for the whole walk and the wait after it, so one node verifies per interval.
                if (await _leases.TryAcquireAsync(LeaseName, interval + TimeSpan.FromMinutes(5), stoppingToken))
                {
                    await VerifyAsync(stoppingToken);
                }
                await Task.Delay(interval, _time, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogFailed(_logger, ex);
                await Task.Delay(TimeSpan.FromMinutes(1), _time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "The audit chain does not verify at entry {Seq}: {Reason}. Entries were altered, removed or truncated; compare with a backup (see docs/operations.md, Incidents)")]
    private static partial void LogInvalid(ILogger logger, long? seq, string? reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Verifying the audit chain failed to complete; trying again in a minute")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
