using System.Collections.Concurrent;

namespace Fundament.Core.Quotas;

/// <summary>
/// The blocking watches each principal holds open on this node, counted for the
/// <see cref="Quota.ConcurrentWatches"/> quota. A slot is taken for the duration of one watch.
/// </summary>
public sealed class WatchSlots(IQuotas quotas) : IQuotaMeter
{
    private readonly ConcurrentDictionary<string, int> _open = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public string Quota => Fundament.Core.Quotas.Quota.ConcurrentWatches;

    public Task<long> UsedAsync(string actor, CancellationToken cancellationToken) =>
        Task.FromResult((long)_open.GetValueOrDefault(actor));

    /// <summary>Takes a slot, or throws <see cref="QuotaExceededException"/> (429) when the subject's watches are all in use.</summary>
    public async Task<IDisposable> AcquireAsync(QuotaSubject subject, CancellationToken cancellationToken)
    {
        var limit = await quotas.LimitAsync(subject, Quota, cancellationToken);
        lock (_gate)
        {
            var used = _open.GetValueOrDefault(subject.Actor);
            if (limit.Limit is { } max && used >= max)
            {
                throw new QuotaExceededException(Quota, max, used, 1, limit.Source);
            }
            _open[subject.Actor] = used + 1;
        }
        return new Slot(this, subject.Actor);
    }

    private void Release(string actor)
    {
        lock (_gate)
        {
            var left = _open.GetValueOrDefault(actor) - 1;
            if (left <= 0)
            {
                _open.TryRemove(actor, out _);
            }
            else
            {
                _open[actor] = left;
            }
        }
    }

    private sealed class Slot(WatchSlots owner, string actor) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(actor);
            }
        }
    }
}
