using Microsoft.Extensions.Hosting;

namespace Fundament.Client;

/// <summary>How a hosted consumer (of an event subscription or a bus group) pulls.</summary>
public class PullConsumerOptions
{
    /// <summary>Items (events or messages) per pull. Default 50.</summary>
    public int BatchSize { get; set; } = 50;

    /// <summary>How long a pull waits for items before asking again. Default 20s.</summary>
    public TimeSpan Wait { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Lease per pull: how long a batch may take before its items go to another consumer. Default: the server's (30s).</summary>
    public TimeSpan? Lease { get; set; }

    /// <summary>Longest pause between attempts while Fundament is unreachable or refuses. Default 30s.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The loop the SDK's hosted consumers share (event subscriptions and bus consumer groups): make
/// sure the server side exists, then pull and handle round after round; while Fundament is
/// unreachable or refuses, back off (doubling from 1 s up to <c>maxBackoff</c>) and try again; when
/// the server side is gone (404), make it again on the next round.
/// </summary>
internal abstract class PullConsumerWorker(TimeProvider time, TimeSpan maxBackoff) : BackgroundService
{
    /// <summary>Creates the subscription or group if needed.</summary>
    protected abstract Task EnsureAsync(CancellationToken stoppingToken);

    /// <summary>One pull and the handling of what it brought.</summary>
    protected abstract Task RoundAsync(CancellationToken stoppingToken);

    /// <summary>The server answered 404 after the subscription or group had been made: it is made again next round.</summary>
    protected virtual void OnGone()
    {
    }

    protected abstract void OnRoundFailed(TimeSpan pause, Exception exception);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        var ensured = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!ensured)
                {
                    await EnsureAsync(stoppingToken).ConfigureAwait(false);
                    ensured = true;
                }
                await RoundAsync(stoppingToken).ConfigureAwait(false);
                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                if (ex is HttpRequestException { StatusCode: System.Net.HttpStatusCode.NotFound } && ensured)
                {
                    ensured = false;
                    OnGone();
                }
                failures++;
                var pause = TimeSpan.FromMilliseconds(Math.Min(maxBackoff.TotalMilliseconds, 500 * Math.Pow(2, Math.Min(failures, 10))));
                OnRoundFailed(pause, ex);
                await Task.Delay(pause, time, stoppingToken).ConfigureAwait(false);
            }
        }
    }
}
