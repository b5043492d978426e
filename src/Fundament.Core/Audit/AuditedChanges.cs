namespace Fundament.Core.Audit;

/// <summary>A change and the audit entry that records it, committed together (one unit of work).</summary>
public static class AuditedChanges
{
    /// <summary>
    /// Runs <paramref name="change"/> and appends the entry <paramref name="entry"/> makes of its
    /// result (none when it returns null, e.g. nothing was found), in one unit of work: both
    /// commit, or neither does.
    /// </summary>
    public static Task<T> AuditedAsync<T>(this IDatabase database, IAuditLog audit, Func<Task<T>> change, Func<T, AuditEvent?> entry, CancellationToken cancellationToken) =>
        database.InUnitOfWorkAsync(async () =>
        {
            var result = await change();
            if (entry(result) is { } auditEvent)
            {
                await audit.AppendAsync(auditEvent, cancellationToken);
            }
            return result;
        }, cancellationToken);
}
