using System.Globalization;
using System.Text.RegularExpressions;

namespace Fundament.Core.Hosting;

/// <summary>
/// Durations as people write them in API bodies: <c>500ms</c>, <c>10s</c>, <c>1m</c>, <c>1h30m</c>,
/// <c>30d</c>, or a .NET TimeSpan (<c>00:00:10</c>).
/// </summary>
public static partial class Durations
{
    [GeneratedRegex(@"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")]
    private static partial Regex Compact();

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text) || text.Length > 32)
        {
            return false;
        }
        var match = Compact().Match(text.Trim());
        if (match.Success && match.Length > 0)
        {
            try
            {
                long Part(int group) => match.Groups[group].Success ? long.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture) : 0;
                value = TimeSpan.FromDays(Part(1)) + TimeSpan.FromHours(Part(2)) + TimeSpan.FromMinutes(Part(3)) + TimeSpan.FromSeconds(Part(4)) + TimeSpan.FromMilliseconds(Part(5));
                return true;
            }
            catch (Exception ex) when (ex is OverflowException or ArgumentOutOfRangeException)
            {
                return false;
            }
        }
        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
    }

    /// <summary>The compact form, e.g. <c>1d2h</c>, <c>30s</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }
        var parts = new List<string>();
        if (value.Days > 0) { parts.Add($"{value.Days}d"); }
        if (value.Hours > 0) { parts.Add($"{value.Hours}h"); }
        if (value.Minutes > 0) { parts.Add($"{value.Minutes}m"); }
        if (value.Seconds > 0) { parts.Add($"{value.Seconds}s"); }
        if (value.Milliseconds > 0) { parts.Add($"{value.Milliseconds}ms"); }
        return string.Concat(parts);
    }
}
