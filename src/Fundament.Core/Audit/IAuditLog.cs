namespace Fundament.Core.Audit;

/// <summary>Appends to the tamper-evident audit log (module <c>audit</c>).</summary>
public interface IAuditLog
{
    Task AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken);
}
