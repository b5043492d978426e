using Fundament.Core.Watch;

namespace Fundament.Messaging;

/// <summary>
/// Wakes this node's waiting pulls when a publish, nack or replay commits here. Changes on other
/// nodes are found by polling (<see cref="MessagingOptions.PullPollInterval"/>); this only makes
/// the common case instant.
/// </summary>
internal sealed class PublishSignal
{
    private readonly ChangeSignal _changes = new();

    public void Notify() => _changes.Notify();

    /// <summary>Completes on the next change on this node, after <paramref name="timeout"/>, or on cancellation (without throwing).</summary>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var next = _changes.NextAsync();
        // A network wait, not domain time: it uses the real clock even where tests fake TimeProvider.
        await Task.WhenAny(next, Task.Delay(timeout, cancellationToken)).ConfigureAwait(false);
    }
}
