using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Fundament.Messaging.Storage;

/// <summary>
/// Group commit for publishes: the one writer of this node takes everything queued (up to
/// <see cref="Batch"/>) and stores it in one transaction, then answers every caller. One commit (one
/// fsync) serves every publish that arrived while the previous one was being written, as the audit
/// log does (ADR 0014). A batch that fails is retried one message at a time, so a message fails only
/// its own caller. A caller that goes away still gets its message stored (it may publish again: the
/// id makes that a duplicate).
/// </summary>
internal sealed class PublishWriter
{
    private const int Batch = 256;

    private readonly MessageStore _store;
    private readonly Histogram<int> _batchSizes;
    private readonly GroupCommitQueue<Queued> _queue;

    private readonly IDatabase _database;

    public PublishWriter(MessageStore store, IDatabase database, IMeterFactory meters)
    {
        _store = store;
        _database = database;
        _queue = new GroupCommitQueue<Queued>(Batch, CommitAsync);
        _batchSizes = meters.Create("Fundament.Messaging").CreateHistogram<int>("fundament.messaging.group_commit.messages", "{message}", "Messages per group commit of publishes.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });
    }

    /// <summary>Stores the message durably (in the next group commit) and returns its sequence, or the original's as a duplicate.</summary>
    public async Task<(long Sequence, bool Duplicate)> PublishAsync(string topic, OutgoingMessage message, string? publishedBy)
    {
        if (UnitOfWork.Current is not null)
        {
            // Inside a unit of work the message commits with the caller's change, or not at all.
            return (await _store.PublishAsync([(topic, message, publishedBy)], CancellationToken.None))[0];
        }
        var queued = new Queued(topic, message, publishedBy);
        _queue.Enqueue(queued);
        return await queued.Done.Task;
    }

    private async Task CommitAsync(IReadOnlyList<Queued> batch)
    {
        try
        {
            var results = await _store.PublishAsync(batch.Select(b => (b.Topic, b.Message, b.PublishedBy)).ToList(), CancellationToken.None);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Done.TrySetResult(results[i]);
            }
            _batchSizes.Record(batch.Count);
        }
        catch (Exception ex) when (batch.Count > 1 && IsRace(ex))
        {
            // A race with another node (the same id published there, a deadlock on keys) failed the
            // batch: each message goes alone, failing only itself.
            foreach (var queued in batch)
            {
                try
                {
                    queued.Done.TrySetResult((await _store.PublishAsync([(queued.Topic, queued.Message, queued.PublishedBy)], CancellationToken.None))[0]);
                }
                catch (Exception single)
                {
                    queued.Done.TrySetException(single);
                }
            }
        }
        catch (Exception ex)
        {
            foreach (var queued in batch)
            {
                queued.Done.TrySetException(ex);
            }
        }
    }

    /// <summary>
    /// Whether the batch failed on a race another try can settle (a unique key, a deadlock, a
    /// serialization failure). Anything else (the database down) fails every caller at once rather
    /// than one connection timeout after another while the queue waits.
    /// </summary>
    private bool IsRace(Exception ex) =>
        _database.Dialect.IsUniqueViolation(ex) || ex is Npgsql.PostgresException { SqlState: "40P01" or "40001" };

    private sealed record Queued(string Topic, OutgoingMessage Message, string? PublishedBy)
    {
        public TaskCompletionSource<(long Sequence, bool Duplicate)> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
