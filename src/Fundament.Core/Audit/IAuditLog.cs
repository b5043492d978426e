namespace Fundament.Core.Audit;

/// <summary>Appends to the tamper-evident audit log (module <c>audit</c>).</summary>
public interface IAuditLog
{
    Task AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken);

    /// <summary>Several entries, in order; inside a unit of work they commit with it, written together where the log can.</summary>
    async Task AppendAsync(IReadOnlyList<AuditEvent> auditEvents, CancellationToken cancellationToken)
    {
        foreach (var auditEvent in auditEvents)
        {
            await AppendAsync(auditEvent, cancellationToken).ConfigureAwait(false);
        }
    }
}
