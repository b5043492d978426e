namespace Fundament.Core.Hosting;

/// <summary>The roles this process runs, resolved once at start-up.</summary>
public sealed class RoleSet(IReadOnlySet<string> roles)
{
    public IReadOnlySet<string> Roles { get; } = roles;

    public bool Runs(string role) => Roles.Contains(role);

    public override string ToString() =>
        Roles.Contains(FundamentRoles.All) ? FundamentRoles.All : string.Join(",", Roles.Order());
}
