using System.Text.RegularExpressions;

namespace Fundament.Registry;

/// <summary>The registry's name rules, shared by its endpoints.</summary>
internal static partial class RegistryNames
{
    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex ServicePattern();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
    private static partial Regex InstanceIdPattern();

    /// <summary>1-63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit.</summary>
    public static bool IsService(string name) => ServicePattern().IsMatch(name);

    public static bool IsInstanceId(string id) => InstanceIdPattern().IsMatch(id);

    /// <summary>Instance ids only Fundament's own nodes use (<see cref="SelfRegistration"/>).</summary>
    public static bool IsReservedInstanceId(string id) =>
        id.StartsWith("fundament-", StringComparison.OrdinalIgnoreCase) || id.StartsWith("fundament:", StringComparison.OrdinalIgnoreCase);
}
