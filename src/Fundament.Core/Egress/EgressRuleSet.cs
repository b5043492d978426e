using System.Net;

namespace Fundament.Core.Egress;

/// <summary>
/// One purpose's Allow and Deny rules, parsed. <see cref="Decide"/> returns the verdict of the
/// most specific matching rule: a host-name rule beats any CIDR (an exact name beats a
/// <c>*.suffix</c>, a longer suffix a shorter one), a longer prefix beats a shorter one, and Deny
/// beats Allow when both are equally specific. Null when no rule matches.
/// </summary>
internal sealed class EgressRuleSet
{
    private readonly List<(bool Allow, IPNetwork Network)> _networks = [];
    private readonly List<(bool Allow, string Name, bool Suffix)> _names = [];

    private EgressRuleSet()
    {
    }

    public static EgressRuleSet Empty { get; } = new();

    /// <summary>Parses the rules; <paramref name="problems"/> names each entry that is neither a CIDR nor a host name.</summary>
    public static EgressRuleSet Parse(EgressRules rules, string key, List<string> problems)
    {
        var set = new EgressRuleSet();
        set.Add(true, rules.Allow, key + ":Allow", problems);
        set.Add(false, rules.Deny, key + ":Deny", problems);
        return set;
    }

    private void Add(bool allow, string[] entries, string key, List<string> problems)
    {
        for (var i = 0; i < entries.Length; i++)
        {
            var entry = entries[i]?.Trim() ?? "";
            if (TryParseNetwork(entry, out var network))
            {
                _networks.Add((allow, network));
            }
            else if (entry.StartsWith("*.", StringComparison.Ordinal) && IsHostName(entry[2..]))
            {
                _names.Add((allow, entry[1..].ToLowerInvariant(), true));
            }
            else if (IsHostName(entry))
            {
                _names.Add((allow, entry.ToLowerInvariant(), false));
            }
            else
            {
                problems.Add($"{key}:{i} ('{entry}') must be a CIDR such as 10.0.0.0/8, an IP address, or a host name such as hooks.internal or *.internal.");
            }
        }
    }

    /// <summary>A CIDR (its base address without host bits) or a single address (/32, /128).</summary>
    public static bool TryParseNetwork(string text, out IPNetwork network)
    {
        network = default;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addressText.Trim('[', ']'), out var address) || !addressText.Contains(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? '.' : ':', StringComparison.Ordinal))
        {
            return false;
        }
        address = IpAddresses.Normalize(address);
        var max = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        var length = max;
        if (slash >= 0 && (!int.TryParse(text[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out length) || length > max))
        {
            return false;
        }
        try
        {
            network = new IPNetwork(address, length);
        }
        catch (ArgumentException)
        {
            return false;
        }
        // Host bits set below the prefix (10.0.0.1/8) are ambiguous: refused rather than guessed.
        return network.BaseAddress.Equals(address);
    }

    private static bool IsHostName(string name) =>
        name.Length is > 0 and <= 253 && !IPAddress.TryParse(name, out _) && Uri.CheckHostName(name) == UriHostNameType.Dns;

    /// <summary>The verdict of the most specific rule for this target, or null.</summary>
    public bool? Decide(string? host, IPAddress address) => DecideName(host) ?? DecideAddress(address);

    /// <summary>The verdict of the most specific host-name rule, or null.</summary>
    public bool? DecideName(string? host)
    {
        if (host is { Length: > 0 } && _names.Count > 0)
        {
            var name = host.TrimEnd('.').ToLowerInvariant();
            (bool Allow, int Rank)? best = null;
            foreach (var (allow, ruleName, suffix) in _names)
            {
                var matches = suffix ? name.EndsWith(ruleName, StringComparison.Ordinal) : name == ruleName;
                if (!matches)
                {
                    continue;
                }
                // Exact names outrank every suffix; longer suffixes outrank shorter ones.
                var rank = suffix ? ruleName.Length : int.MaxValue;
                if (best is null || rank > best.Value.Rank || (rank == best.Value.Rank && !allow))
                {
                    best = (allow, rank);
                }
            }
            if (best is { } decided)
            {
                return decided.Allow;
            }
        }
        return null;
    }

    /// <summary>The verdict of the most specific CIDR rule, or null.</summary>
    public bool? DecideAddress(IPAddress address)
    {
        (bool Allow, int Length)? bestNetwork = null;
        foreach (var (allow, network) in _networks)
        {
            if (!network.Contains(address))
            {
                continue;
            }
            if (bestNetwork is null || network.PrefixLength > bestNetwork.Value.Length || (network.PrefixLength == bestNetwork.Value.Length && !allow))
            {
                bestNetwork = (allow, network.PrefixLength);
            }
        }
        return bestNetwork?.Allow;
    }
}
