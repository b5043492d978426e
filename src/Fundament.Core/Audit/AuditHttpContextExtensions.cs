namespace Fundament.Core.Audit;

public static class AuditHttpContextExtensions
{
    /// <summary>Fills actor and source IP of <paramref name="auditEvent"/> from the current request.</summary>
    public static AuditEvent From(this AuditEvent auditEvent, HttpContext context)
    {
        var user = context.User;
        var actor = auditEvent.Actor;
        var actorName = auditEvent.ActorName;
        if (user.Identity?.IsAuthenticated == true)
        {
            actor = user.ActorId() ?? actor;
            actorName ??= user.FindFirst(FundamentClaims.Name)?.Value;
        }
        return auditEvent with
        {
            Actor = actor,
            ActorName = actorName,
            SourceIp = auditEvent.SourceIp ?? context.Connection.RemoteIpAddress?.ToString(),
        };
    }
}
