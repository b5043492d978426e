namespace Fundament.Core.Egress;

/// <summary>
/// Section <c>Fundament:Egress</c>: where outbound connections to tenant-supplied targets may go,
/// per purpose. Rules are CIDRs (<c>10.0.0.0/8</c>, <c>fd00::/8</c>, a single address) or host
/// names (<c>hooks.internal</c>, or <c>*.internal</c> for every name under it). What is always
/// denied (link-local, cloud metadata, <c>0.0.0.0/8</c>, multicast, broadcast, Fundament's own
/// ports) cannot be allowed. See docs/security.md.
/// </summary>
public sealed class EgressOptions
{
    public const string SectionName = "Fundament:Egress";

    /// <summary>Gateway upstreams, registry health checks. Default: everything not always denied.</summary>
    public EgressRules Upstreams { get; set; } = new();

    /// <summary>Webhook subscriptions. Default: public addresses only.</summary>
    public EgressRules Webhooks { get; set; } = new();

    /// <summary>Alert channels and the SMTP server. Default: public addresses only.</summary>
    public EgressRules AlertChannels { get; set; } = new();

    public EgressRules For(EgressPurpose purpose) => purpose switch
    {
        EgressPurpose.Upstreams => Upstreams,
        EgressPurpose.Webhooks => Webhooks,
        EgressPurpose.AlertChannels => AlertChannels,
        _ => throw new ArgumentOutOfRangeException(nameof(purpose)),
    };
}

/// <summary>
/// One purpose's rules. The most specific matching rule decides (a host name beats any CIDR, a
/// longer prefix beats a shorter one, Deny beats Allow at equal length); with no match, the
/// purpose's default applies.
/// </summary>
public sealed class EgressRules
{
    /// <summary>CIDRs and host names that may be reached, e.g. <c>127.0.0.1/32</c> to let webhooks reach a local receiver.</summary>
    public string[] Allow { get; set; } = [];

    /// <summary>CIDRs and host names that may not be reached, e.g. <c>10.20.0.0/16</c> for a database subnet.</summary>
    public string[] Deny { get; set; } = [];
}
