using System.Text.RegularExpressions;

namespace Fundament.Config;

/// <summary>
/// Where an entry applies: a service (or <c>*</c> for all) and an environment (or <c>*</c>). The
/// resolved view for a service in an environment overlays, lowest first:
/// <c>(*, *)</c> &lt; <c>(*, env)</c> &lt; <c>(service, *)</c> &lt; <c>(service, env)</c>.
/// </summary>
internal static partial class ConfigScope
{
    public const string Any = "*";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")]
    private static partial Regex KeyPattern();

    public static string? NameProblem(string field, string? value, bool allowAny) =>
        string.IsNullOrEmpty(value) ? $"{field} is required{(allowAny ? " (\"*\" for all)" : "")}."
        : value == Any ? (allowAny ? null : $"{field} must be a name, not \"*\".")
        : NamePattern().IsMatch(value) ? null
        : $"{field} must be 1-63 characters of a-z, 0-9, '.', '_' and '-'.";

    public static string? KeyProblem(string? key) =>
        string.IsNullOrEmpty(key) ? "key is required."
        : KeyPattern().IsMatch(key) ? null
        : "key must be 1-200 characters of letters, digits, '.', '_', ':', '/' and '-'.";

    /// <summary>Higher wins.</summary>
    public static int Precedence(string service, string environment) =>
        (service == Any ? 0 : 2) + (environment == Any ? 0 : 1);
}
