using Fundament.Core.Quotas;

namespace Fundament.Identity.Quotas;

/// <summary>
/// A quota override more generous than the default (or unlimited), bound to a role or principal,
/// is a grant of resources: handing out such a role, or taking over such a principal, needs
/// <c>quotas.write</c>. Stricter overrides bind nothing worth taking.
/// </summary>
internal sealed class QuotaBoundGrants(QuotaStore store, IOptionsMonitor<QuotaOptions> options) : IBoundGrants
{
    public async Task<IReadOnlyCollection<string>> RequiredForAsync(IReadOnlyCollection<string> subjects, CancellationToken cancellationToken)
    {
        var roles = subjects.Where(s => s.StartsWith("role:", StringComparison.Ordinal)).Select(s => s["role:".Length..]).ToList();
        var principals = subjects.Where(s => !s.StartsWith("role:", StringComparison.Ordinal)).ToList();
        var overrides = new List<QuotaOverride>();
        foreach (var principal in principals.DefaultIfEmpty(""))
        {
            overrides.AddRange(await store.ForAsync(principal, roles, null, cancellationToken));
        }
        var generous = overrides.Any(o => options.CurrentValue.Default(o.Quota) is { } fallback && (o.QuotaLimit is null || o.QuotaLimit > fallback));
        return generous ? [IdentityPermissions.QuotasWrite] : [];
    }
}
