using Microsoft.Extensions.Hosting;

namespace Fundament.Audit;

/// <summary>
/// Chains pending audit entries soon after they commit: woken by every local append and, for
/// entries written by other replicas, every second. Several replicas may run it; they take turns on
/// the chain head's lock. Queries and verification link on their own as well, so nobody reads a
/// log missing what was committed.
/// </summary>
internal sealed partial class AuditChainWriter(AuditLog log, TimeProvider time, ILogger<AuditChainWriter> logger) : BackgroundService
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long after an append the linker waits for more before it links.</summary>
    private static readonly TimeSpan Gather = TimeSpan.FromMilliseconds(100);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var appended = log.Pending.NextAsync();
            try
            {
                await log.LinkAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogLinkFailed(logger, ex);
            }
            using var pause = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var woken = await Task.WhenAny(appended, Task.Delay(PollInterval, time, pause.Token)) == appended;
            await pause.CancelAsync();
            if (woken)
            {
                // Let a burst gather, so one transaction links it rather than one per entry (real
                // time: this is about the database's load, not the clock the entries carry).
                await Task.Delay(Gather, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Chaining pending audit entries failed; retrying")]
    private static partial void LogLinkFailed(ILogger logger, Exception exception);
}
