namespace Fundament.Audit;

/// <summary>Permissions of the audit module.</summary>
public static class AuditPermissions
{
    /// <summary>Read and verify the audit log.</summary>
    public const string Read = "audit.read";
}
