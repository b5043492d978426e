using System.Globalization;

namespace Fundament.Core.Watch;

/// <summary>
/// Consul-style blocking reads: an answer carries an index (header <c>X-Fundament-Index</c>); a
/// request with <c>?index=N&amp;wait=30s</c> is held until the index moves past N or the wait ends.
/// Changes made in this process wake the request at once; changes made by another replica are
/// seen by re-reading the index every <see cref="PollInterval"/>, so any change answers within a second.
/// </summary>
public static class BlockingQuery
{
    public const string IndexHeader = "X-Fundament-Index";

    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);
    public static readonly TimeSpan DefaultWait = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan MaxWait = TimeSpan.FromMinutes(10);

    /// <summary>Parses <c>wait</c>; null with an error message when it is not a duration up to <see cref="MaxWait"/>.</summary>
    public static TimeSpan? ParseWait(string? wait, out string? error)
    {
        error = null;
        if (string.IsNullOrEmpty(wait))
        {
            return DefaultWait;
        }
        if (!Durations.TryParse(wait, out var value) || value > MaxWait)
        {
            error = "wait must be a duration such as 30s or 5m, at most 10m.";
            return null;
        }
        return value;
    }

    /// <summary>Waits until <paramref name="currentIndex"/> exceeds <paramref name="index"/> or <paramref name="wait"/> passes; returns the last index read.</summary>
    public static async Task<long> WaitAsync(
        Func<CancellationToken, Task<long>> currentIndex, long index, TimeSpan wait, ChangeSignal signal, TimeProvider time, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + wait;
        while (true)
        {
            // Take the signal before reading, so a change between the read and the wait is not missed.
            var changed = signal.NextAsync();
            var current = await currentIndex(cancellationToken);
            var remaining = deadline - time.GetUtcNow();
            if (current > index || remaining <= TimeSpan.Zero)
            {
                return current;
            }
            var pause = remaining < PollInterval ? remaining : PollInterval;
            using var delayCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var delay = Task.Delay(pause, time, delayCancel.Token);
            await Task.WhenAny(changed, delay);
            await delayCancel.CancelAsync();
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    public static void SetIndex(HttpResponse response, long index) =>
        response.Headers[IndexHeader] = index.ToString(CultureInfo.InvariantCulture);
}
