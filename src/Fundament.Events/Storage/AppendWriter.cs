using Fundament.Core.Quotas;

namespace Fundament.Events.Storage;

/// <summary>
/// Group commit of appends: requests enqueue their appends and wait; one writer per node takes
/// everything queued and writes it in one transaction (<see cref="EventStore.AppendBatchAsync"/>),
/// with every written append's audit entry, so appends that arrive while one transaction runs share
/// the next one's lock, statements and commit instead of queueing for the lock one by one. Each
/// append keeps its own outcome: a refusal (wrong version, ids in use, quota) changes nothing and
/// does not touch the others; a failure of the transaction itself fails every append of the batch,
/// none of which was written. Answers go out only after the commit (and so after their audit entry
/// is durable).
/// </summary>
internal sealed class AppendWriter
{
    /// <summary>Most appends one transaction takes (a request holds at most MaxEventsPerAppend events).</summary>
    private const int MaxBatch = 64;

    private readonly IDatabase _database;
    private readonly EventStore _store;
    private readonly IQuotas _quotas;
    private readonly IAuditLog _audit;
    private readonly GroupCommitQueue<Pending> _queue;

    public AppendWriter(IDatabase database, EventStore store, IQuotas quotas, IAuditLog audit)
    {
        (_database, _store, _quotas, _audit) = (database, store, quotas, audit);
        _queue = new GroupCommitQueue<Pending>(MaxBatch, CommitAsync);
    }

    private sealed record Pending(BatchAppend Append, Func<AppendOutcome, AuditEvent?> Entry, TaskCompletionSource<AppendOutcome> Done);

    /// <summary>Appends all of <paramref name="appends"/> or none, audited with <paramref name="entry"/> (null: no entry) in the same transaction.</summary>
    /// <exception cref="QuotaExceededException">The principal's storedEvents quota has no room.</exception>
    public Task<AppendOutcome> AppendAsync(IReadOnlyList<StreamAppend> appends, QuotaSubject subject, Func<AppendOutcome, AuditEvent?> entry)
    {
        var done = new TaskCompletionSource<AppendOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Enqueue(new Pending(new BatchAppend(appends, subject.Actor, subject), entry, done));
        return done.Task;
    }

    /// <summary>
    /// Events and streams one transaction may name: the batch's ids and streams are read in one
    /// statement, and SQLite allows 32,766 variables in one. A request over it on its own still goes, alone.
    /// </summary>
    private const int MaxBatchWeight = 8_000;

    private async Task CommitAsync(IReadOnlyList<Pending> queued)
    {
        var batch = new List<Pending>();
        var weight = 0;
        foreach (var pending in queued)
        {
            var itemWeight = pending.Append.Appends.Sum(a => a.Events.Count + 1);
            if (batch.Count > 0 && weight + itemWeight > MaxBatchWeight)
            {
                await CommitBatchAsync(batch);
                (batch, weight) = ([], 0);
            }
            batch.Add(pending);
            weight += itemWeight;
        }
        await CommitBatchAsync(batch);
    }

    private async Task CommitBatchAsync(IReadOnlyList<Pending> batch)
    {
        IReadOnlyList<BatchOutcome> outcomes;
        try
        {
            // Whether a principal, with the roles of this request, has no storedEvents limit (an administrator): looked up
            // once per batch. The roles are part of the key: an API key of the same user may hold fewer.
            var unlimited = new Dictionary<string, bool>(StringComparer.Ordinal);
            async Task ReserveAsync(BatchAppend append, long adding)
            {
                var key = append.Actor + "\n" + string.Join(",", append.Subject!.Roles.Order(StringComparer.Ordinal));
                if (!unlimited.TryGetValue(key, out var free))
                {
                    unlimited[key] = free = (await _quotas.LimitAsync(append.Subject!, Quota.StoredEvents, CancellationToken.None)).Limit is null;
                }
                if (!free)
                {
                    await _quotas.EnsureAsync(append.Subject!, Quota.StoredEvents, adding, CancellationToken.None);
                }
            }
            outcomes = await _database.InUnitOfWorkAsync(async () =>
            {
                var outcomes = await _store.AppendBatchAsync(batch.Select(p => p.Append).ToList(), ReserveAsync, CancellationToken.None);
                var entries = new List<AuditEvent>();
                for (var i = 0; i < batch.Count; i++)
                {
                    if (outcomes[i].Outcome is { } outcome && batch[i].Entry(outcome) is { } entry)
                    {
                        entries.Add(entry);
                    }
                }
                if (entries.Count > 0)
                {
                    await _audit.AppendAsync(entries, CancellationToken.None);
                }
                return outcomes;
            }, CancellationToken.None);
        }
        catch (Exception) when (batch.Count > 1)
        {
            // Nothing of the batch was written. One append may be the cause (its data, its audit entry): each goes
            // again on its own, so only the culprit fails (an append is idempotent by its ids, so this is safe).
            foreach (var pending in batch)
            {
                await CommitBatchAsync([pending]);
            }
            return;
        }
        catch (Exception ex)
        {
            batch[0].Done.TrySetException(ex);
            return;
        }
        for (var i = 0; i < batch.Count; i++)
        {
            if (outcomes[i].Refusal is { } refusal)
            {
                batch[i].Done.TrySetException(refusal);
            }
            else
            {
                batch[i].Done.TrySetResult(outcomes[i].Outcome!);
            }
        }
    }
}
