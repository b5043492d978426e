using System.Security.Cryptography;
using System.Text;
using Dapper;
using Fundament.Core.Quotas;

namespace Fundament.Identity.Quotas;

/// <summary>
/// Resolves limits (the principal's override, else the most generous of its roles, else the
/// configured default; the built-in <c>admin</c> role is unlimited unless overridden) and checks
/// usage measured by the modules' <see cref="IQuotaMeter"/>s.
/// </summary>
internal sealed class QuotaService(QuotaStore store, IDatabase database, IOptionsMonitor<QuotaOptions> options, IServiceProvider services) : IQuotas
{
    private const string AdminRole = "admin";

    // Resolved lazily: meters depend on their modules' stores, some of which depend on IQuotas.
    private IReadOnlyDictionary<string, IQuotaMeter>? _meters;

    private IReadOnlyDictionary<string, IQuotaMeter> Meters => _meters ??=
        services.GetServices<IQuotaMeter>().GroupBy(m => m.Quota, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count() == 1 ? g.First() : new SummedMeter(g.Key, g.ToList()), StringComparer.Ordinal);

    /// <summary>A quota several modules meter (storedBytes: media originals and event-store snapshots): usage is their sum.</summary>
    private sealed class SummedMeter(string quota, IReadOnlyList<IQuotaMeter> meters) : IQuotaMeter
    {
        public string Quota => quota;

        public async Task<long> UsedAsync(string actor, CancellationToken cancellationToken)
        {
            long used = 0;
            foreach (var meter in meters)
            {
                used += await meter.UsedAsync(actor, cancellationToken);
            }
            return used;
        }
    }

    public async Task<QuotaLimit> LimitAsync(QuotaSubject subject, string quota, CancellationToken cancellationToken) =>
        Resolve(subject, quota, await store.ForAsync(subject.Actor, subject.Roles, quota, cancellationToken));

    private QuotaLimit Resolve(QuotaSubject subject, string quota, IReadOnlyList<QuotaOverride> overrides)
    {
        if (overrides.FirstOrDefault(o => o.Scope == QuotaStore.PrincipalScope && o.Quota == quota) is { } own)
        {
            return new QuotaLimit(own.QuotaLimit, "override");
        }
        var fallback = options.CurrentValue.Default(quota);
        QuotaLimit? best = null;
        foreach (var role in subject.Roles)
        {
            var row = overrides.FirstOrDefault(o => o.Scope == QuotaStore.RoleScope && o.Subject == role && o.Quota == quota);
            var candidate = row is not null ? new QuotaLimit(row.QuotaLimit, "role:" + role)
                : role == AdminRole ? new QuotaLimit(null, "role:" + role)
                : new QuotaLimit(fallback, "default");
            if (best is null || More(candidate.Limit, best.Limit))
            {
                best = candidate;
            }
        }
        return best ?? new QuotaLimit(fallback, "default");
    }

    private static bool More(long? candidate, long? current) => current is not null && (candidate is null || candidate > current);

    public async Task EnsureAsync(QuotaSubject subject, string quota, long adding, CancellationToken cancellationToken)
    {
        var limit = await LimitAsync(subject, quota, cancellationToken);
        if (limit.Limit is not { } max || !Meters.TryGetValue(quota, out var meter))
        {
            return;
        }
        if (UnitOfWork.Current is not null && database.Dialect == SqlDialect.Postgres)
        {
            // Serializes the check-then-write of one principal's quota across replicas until the unit ends.
            await using var connection = await database.OpenAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@key)", new { key = LockKey(subject.Actor) }, cancellationToken: cancellationToken));
        }
        var used = await meter.UsedAsync(subject.Actor, cancellationToken);
        // Written so that it cannot overflow, whatever the limit.
        if (adding > max - used)
        {
            throw new QuotaExceededException(quota, max, used, adding, limit.Source);
        }
    }

    public async Task<QuotaState> StateAsync(QuotaSubject subject, string quota, CancellationToken cancellationToken)
    {
        var limit = await LimitAsync(subject, quota, cancellationToken);
        var used = Meters.TryGetValue(quota, out var meter) ? await meter.UsedAsync(subject.Actor, cancellationToken) : 0;
        return new QuotaState(quota, limit.Limit, used, limit.Source);
    }

    public async Task<IReadOnlyList<QuotaState>> StatesAsync(QuotaSubject subject, CancellationToken cancellationToken)
    {
        var overrides = await store.ForAsync(subject.Actor, subject.Roles, null, cancellationToken);
        var states = new List<QuotaState>();
        foreach (var quota in Quota.All)
        {
            if (Meters.TryGetValue(quota, out var meter))
            {
                var limit = Resolve(subject, quota, overrides);
                states.Add(new QuotaState(quota, limit.Limit, await meter.UsedAsync(subject.Actor, cancellationToken), limit.Source));
            }
        }
        return states;
    }

    /// <summary>One lock per principal (not per quota), so checks of several quotas in one unit cannot deadlock.</summary>
    private static long LockKey(string actor) =>
        BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("fundament-quota:" + actor)), 0);
}
