namespace Fundament.Events.Storage;

/// <summary>
/// Stream grants (table <c>events_grants</c>): a principal may read or append on every stream under
/// a prefix. Nothing is allowed without a grant, except to holders of <see cref="EventsPermissions.Admin"/> (and <c>*</c>).
/// </summary>
internal sealed class StreamGrantStore(IDatabase database, IRolePermissions rolePermissions, TimeProvider time) : PrefixGrantStore(database, rolePermissions, time)
{
    public const string Read = "read";
    public const string Append = "append";

    public static readonly IReadOnlyList<string> Capabilities = [Read, Append];

    protected override string Table => "events_grants";

    protected override string PrefixColumn => "stream_prefix";

    protected override string AdminPermission => EventsPermissions.Admin;
}
