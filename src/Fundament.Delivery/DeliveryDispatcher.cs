using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;

namespace Fundament.Delivery;

/// <summary>Claims due deliveries and sends them with bounded concurrency, every poll interval.</summary>
internal sealed partial class DeliveryDispatcher : BackgroundService
{
    private readonly DeliveryStore _store;
    private readonly DeliverySender _sender;
    private readonly TimeProvider _time;
    private readonly IOptions<DeliveryOptions> _options;
    private readonly ILogger<DeliveryDispatcher> _logger;
    private readonly string _owner = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}";
    private readonly Counter<long> _attempts;

    public DeliveryDispatcher(DeliveryStore store, DeliverySender sender, TimeProvider time, IOptions<DeliveryOptions> options, IMeterFactory meters, ILogger<DeliveryDispatcher> logger)
    {
        _store = store;
        _sender = sender;
        _time = time;
        _options = options;
        _logger = logger;
        _attempts = meters.Create("Fundament.Delivery").CreateCounter<long>("fundament.delivery.attempts", "{attempt}", "Delivery attempts by kind and outcome.");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Value.PollInterval, _time);
        do
        {
            try
            {
                await PassAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(_logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>Sends everything due now and returns when those attempts are recorded.</summary>
    public async Task<int> PassAsync(CancellationToken cancellationToken)
    {
        var items = await _store.ClaimDueAsync(_owner, _options.Value.MaxConcurrent, cancellationToken);
        await Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = _options.Value.MaxConcurrent, CancellationToken = cancellationToken }, async (item, ct) =>
        {
            AttemptResult result;
            try
            {
                result = await _sender.SendAsync(item, _store.SecretOf(item), ct);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                LogSendFailed(_logger, item.Id, ex);
                result = new AttemptResult(false, false, null, "internal error while sending", TimeSpan.Zero);
            }
            _attempts.Add(1, new KeyValuePair<string, object?>("kind", item.Kind), new KeyValuePair<string, object?>("outcome", result.Success ? "delivered" : "failed"));
            await _store.RecordAsync(item, _owner, result, CancellationToken.None);
        });
        return items.Count;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Delivery pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sending delivery {DeliveryId} failed unexpectedly")]
    private static partial void LogSendFailed(ILogger logger, string deliveryId, Exception exception);
}
