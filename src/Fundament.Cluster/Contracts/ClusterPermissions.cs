namespace Fundament.Cluster;

public static class ClusterPermissions
{
    public const string Read = "cluster.read";
    public const string Write = "cluster.write";
}
