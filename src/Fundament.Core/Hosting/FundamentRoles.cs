namespace Fundament.Core.Hosting;

/// <summary>
/// The roles one process can take. <c>all</c> runs every module in one process; a scaled-out
/// deployment gives each replica a subset.
/// </summary>
public static class FundamentRoles
{
    public const string All = "all";

    /// <summary>Identity, audit and (later) registry, vault and configuration.</summary>
    public const string Control = "control";

    public const string Gateway = "gateway";
    public const string Media = "media";
    public const string MediaWorker = "media-worker";

    public static readonly IReadOnlySet<string> Known =
        new HashSet<string>(StringComparer.Ordinal) { All, Control, Gateway, Media, MediaWorker };

    /// <summary>The roles a node can actually run (<c>all</c> is shorthand for them), sorted.</summary>
    public static readonly IReadOnlyList<string> Concrete = Known.Where(r => r != All).Order(StringComparer.Ordinal).ToList();

    public static bool TryParse(string? value, out IReadOnlySet<string> roles, out string? error)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        error = null;
        foreach (var part in (value ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var role = part.ToLowerInvariant();
            if (!Known.Contains(role))
            {
                error = $"unknown role '{part}'; known roles: {string.Join(", ", Known.Order())}";
                roles = set;
                return false;
            }
            set.Add(role);
        }
        if (set.Count == 0)
        {
            error = "at least one role is required";
            roles = set;
            return false;
        }
        if (set.Contains(All))
        {
            set = new HashSet<string>(Known, StringComparer.Ordinal);
        }
        roles = set;
        return true;
    }
}
