namespace Fundament.Core.Egress;

/// <summary>
/// Why Fundament connects somewhere a tenant or service named. Each purpose has its own policy
/// (<c>Fundament:Egress:&lt;Purpose&gt;</c>) and its own connection pool, so a connection opened under a
/// lenient policy is never reused under a strict one.
/// </summary>
public enum EgressPurpose
{
    /// <summary>Gateway upstreams and registry health checks: loopback and private ranges allowed by default, because services live there.</summary>
    Upstreams,

    /// <summary>Webhook subscriptions: loopback and private ranges denied unless allow-listed.</summary>
    Webhooks,

    /// <summary>Alert channels (webhook, Slack, the SMTP server): loopback and private ranges denied unless allow-listed.</summary>
    AlertChannels,
}

public static class EgressPurposes
{
    /// <summary>The metric and log label of a purpose.</summary>
    public static string Label(this EgressPurpose purpose) => purpose switch
    {
        EgressPurpose.Upstreams => "upstreams",
        EgressPurpose.Webhooks => "webhooks",
        EgressPurpose.AlertChannels => "alert_channels",
        _ => purpose.ToString(),
    };
}
