using System.Threading.Channels;

namespace Fundament.Core.Storage;

/// <summary>
/// The one writer of a node for one kind of write (group commit): callers enqueue, and a single
/// drain takes everything queued (up to <c>maxBatch</c>) and hands it to <c>commit</c> as one batch,
/// and goes on while anything is queued. One commit (one fsync) then serves every write that arrived
/// while the previous one was being made. <c>commit</c> completes its items (answers or fails their
/// callers) and must not throw. Used by the audit log and the bus's publishes.
/// </summary>
public sealed class GroupCommitQueue<T>(int maxBatch, Func<IReadOnlyList<T>, Task> commit)
{
    private readonly Channel<T> _queue = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleReader = true });
    private int _draining;

    /// <summary>Queues <paramref name="item"/> for the next batch, starting the writer if none runs.</summary>
    public void Enqueue(T item)
    {
        _queue.Writer.TryWrite(item);
        if (Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            // The writer outlives the caller's request: it must not carry its context (its trace, a unit of work).
            using (ExecutionContext.SuppressFlow())
            {
                _ = Task.Run(DrainAsync, CancellationToken.None);
            }
        }
    }

    private async Task DrainAsync()
    {
        while (true)
        {
            var batch = new List<T>();
            while (batch.Count < maxBatch && _queue.Reader.TryRead(out var queued))
            {
                batch.Add(queued);
            }
            if (batch.Count == 0)
            {
                Interlocked.Exchange(ref _draining, 0);
                // Something queued between the last read and the release: take the writer's place back, or leave it to whoever did.
                if (!_queue.Reader.TryPeek(out _) || Interlocked.CompareExchange(ref _draining, 1, 0) != 0)
                {
                    return;
                }
                continue;
            }
            await commit(batch).ConfigureAwait(false);
        }
    }
}
