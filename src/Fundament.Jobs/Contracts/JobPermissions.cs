namespace Fundament.Jobs;

public static class JobPermissions
{
    /// <summary>See, retry and cancel jobs; pause and resume queues.</summary>
    public const string Manage = "jobs.manage";
}
