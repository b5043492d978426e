namespace Fundament.Messaging.Storage;

/// <summary>
/// Topic grants (table <c>messaging_grants</c>): a principal may publish and/or consume on every
/// topic under a prefix. Nothing is allowed without a grant, except to holders of <see cref="MessagingPermissions.Admin"/> (and <c>*</c>).
/// </summary>
internal sealed class TopicGrantStore(IDatabase database, IRolePermissions rolePermissions, TimeProvider time) : PrefixGrantStore(database, rolePermissions, time)
{
    public const string Publish = "publish";
    public const string Consume = "consume";

    public static readonly IReadOnlyList<string> Capabilities = [Publish, Consume];

    protected override string Table => "messaging_grants";

    protected override string PrefixColumn => "topic_prefix";

    protected override string AdminPermission => MessagingPermissions.Admin;
}
