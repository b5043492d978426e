namespace Fundament.Events;

/// <summary>
/// Wakes this node's waiting pulls when an append commits here. Appends on other nodes are found
/// by polling (<see cref="EventsOptions.PullPollInterval"/>); this only makes the common case instant.
/// </summary>
internal sealed class AppendSignal
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Called after an append's transaction committed.</summary>
    public void Pulse() => Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Completes on the next append committed on this node, after <paramref name="timeout"/>, or on cancellation (without throwing).</summary>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var next = Volatile.Read(ref _next).Task;
        // A network wait, not domain time: it uses the real clock even where tests fake TimeProvider.
        await Task.WhenAny(next, Task.Delay(timeout, cancellationToken)).ConfigureAwait(false);
    }
}
