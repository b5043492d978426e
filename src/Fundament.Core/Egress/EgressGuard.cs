using System.Diagnostics.Metrics;
using System.Net;

namespace Fundament.Core.Egress;

/// <summary>The verdict on one target; <see cref="Reason"/> says why a refusal happened.</summary>
public readonly record struct EgressDecision(bool Allowed, string? Reason)
{
    public static EgressDecision Allow { get; } = new(true, null);
}

/// <summary>
/// The one policy every outbound connection to a tenant-supplied target passes: gateway upstreams,
/// health checks, webhooks, alert channels. In order:
/// <list type="number">
/// <item>always denied: link-local, cloud metadata, <c>0.0.0.0/8</c>, multicast, broadcast;</item>
/// <item>Fundament's own listening endpoints (unless the caller is the gateway routing to
/// Fundament's own API, which passes <c>allowOwnPort</c>);</item>
/// <item>the most specific configured Allow/Deny rule of the purpose;</item>
/// <item>the purpose's default: upstreams allow everything else, webhooks and alert channels deny
/// loopback and private ranges.</item>
/// </list>
/// Literal targets are checked when they are registered (<see cref="CheckTarget"/>); every
/// connection is checked again on the address it actually connects to
/// (<see cref="EgressConnector"/>). Every refusal is counted in
/// <c>fundament_egress_denied_total{purpose}</c> and logged.
/// </summary>
public sealed partial class EgressGuard
{
    private readonly OwnEndpoints _own;
    private readonly ILogger<EgressGuard> _logger;
    private readonly Counter<long> _denied;
    private readonly Dictionary<EgressPurpose, EgressRuleSet> _rules;

    internal EgressGuard(IOptions<EgressOptions> options, OwnEndpoints own, IMeterFactory meters, ILogger<EgressGuard> logger)
    {
        _own = own;
        _logger = logger;
        _denied = meters.Create("Fundament.Egress").CreateCounter<long>("fundament.egress.denied", "{connection}", "Outbound connections and targets refused by the egress policy, by purpose.");
        var problems = new List<string>();
        _rules = Enum.GetValues<EgressPurpose>().ToDictionary(p => p, p => EgressRuleSet.Parse(options.Value.For(p), $"{EgressOptions.SectionName}:{p}", problems));
    }

    /// <summary>Checks a target as registered: an IP literal (any form) or <c>localhost</c> fully; other host names by name rules only, the rest at connect time.</summary>
    public EgressDecision CheckTarget(EgressPurpose purpose, string host, int port)
    {
        var bare = host.Trim('[', ']');
        // RFC 6761: localhost and every name under it are loopback, whatever a resolver says.
        var localName = bare.Equals("localhost", StringComparison.OrdinalIgnoreCase) || bare.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase);
        IPAddress? literal = IPAddress.TryParse(bare, out var parsed) ? parsed : localName ? IPAddress.Loopback : null;
        var decision = literal is null ? EvaluateName(purpose, bare) : Evaluate(purpose, parsed is null ? bare : null, literal, port);
        if (!decision.Allowed)
        {
            Refused(purpose, $"{host}:{port}", decision.Reason!);
        }
        return decision;
    }

    /// <summary>The verdict for connecting to <paramref name="address"/> (resolved from <paramref name="host"/>, when a name was given). Does not count.</summary>
    /// <param name="operatorConfigured">
    /// The target comes from the operator's own settings (the SMTP server), not from a tenant: only
    /// the always-denied checks apply, so a local mail relay keeps working without an allow entry.
    /// </param>
    public EgressDecision Evaluate(EgressPurpose purpose, string? host, IPAddress address, int port, Func<int, bool>? allowOwnPort = null, bool operatorConfigured = false)
    {
        var forms = IpAddresses.Forms(address).ToList();
        foreach (var form in forms)
        {
            if (IpAddresses.In(form, IpAddresses.AlwaysDenied))
            {
                return new(false, $"{form} is link-local, a cloud metadata address, unspecified, multicast or broadcast, which is always denied");
            }
            if (_own.IsOwn(form, port) && allowOwnPort?.Invoke(port) != true)
            {
                return new(false, $"{form}:{port} is one of Fundament's own listening endpoints");
            }
        }
        if (operatorConfigured)
        {
            return EgressDecision.Allow;
        }
        var rules = _rules[purpose];
        foreach (var form in forms)
        {
            var verdict = rules.Decide(host, form);
            if (verdict == false)
            {
                return new(false, $"{host ?? form.ToString()} is denied by {EgressOptions.SectionName}:{purpose}:Deny");
            }
            if (verdict is null && purpose != EgressPurpose.Upstreams && IpAddresses.In(form, IpAddresses.Internal))
            {
                return new(false, $"{form} is a loopback or private address, which {purpose} may reach only when {EgressOptions.SectionName}:{purpose}:Allow lists it");
            }
        }
        return EgressDecision.Allow;
    }

    private EgressDecision EvaluateName(EgressPurpose purpose, string host)
    {
        // Only name rules can decide before resolution; the address is checked at connect time.
        var verdict = _rules[purpose].DecideName(host);
        return verdict == false ? new(false, $"{host} is denied by {EgressOptions.SectionName}:{purpose}:Deny") : EgressDecision.Allow;
    }

    /// <summary>Counts and logs a refusal.</summary>
    public void Refused(EgressPurpose purpose, string target, string reason)
    {
        _denied.Add(1, new KeyValuePair<string, object?>("purpose", purpose.Label()));
        LogRefused(_logger, purpose.Label(), target, reason);
    }

    /// <summary>Validates the configured rules; each problem names its key.</summary>
    internal static IReadOnlyList<string> Problems(EgressOptions options)
    {
        var problems = new List<string>();
        foreach (var purpose in Enum.GetValues<EgressPurpose>())
        {
            EgressRuleSet.Parse(options.For(purpose), $"{EgressOptions.SectionName}:{purpose}", problems);
        }
        return problems;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Egress refused ({Purpose}) to {Target}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string purpose, string target, string reason);
}
