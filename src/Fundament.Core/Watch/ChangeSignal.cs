namespace Fundament.Core.Watch;

/// <summary>
/// Wakes every waiter when something changed in this process. Cross-replica changes are caught by
/// the waiters' own polling (see <see cref="BlockingQuery"/>).
/// </summary>
public sealed class ChangeSignal
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A task that completes at the next <see cref="Notify"/>.</summary>
    public Task NextAsync() => Volatile.Read(ref _next).Task;

    /// <summary>Wakes the waiters; inside a unit of work, once it has committed (a waiter woken earlier would read the old state).</summary>
    public void Notify() => Storage.UnitOfWork.AfterCommit(NotifyNow);

    private void NotifyNow() =>
        Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}
