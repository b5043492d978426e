namespace Fundament.Client;

/// <summary>Settings of the Fundament client, section <c>Fundament:Client</c>.</summary>
public sealed class FundamentClientOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Fundament:Client";

    /// <summary>Required: base URL of Fundament's control API, e.g. <c>http://fundament:5080</c>.</summary>
    public Uri? Url { get; set; }

    /// <summary>Required: the service client's id (from <c>POST /api/v1/clients</c>).</summary>
    public string? ClientId { get; set; }

    /// <summary>Required: the service client's secret.</summary>
    public string? ClientSecret { get; set; }

    /// <summary>Service name to register and read configuration for. Default: the application name, lower-cased.</summary>
    public string? Service { get; set; }

    /// <summary>Environment whose configuration applies. Default <c>*</c>.</summary>
    public string Environment { get; set; } = "*";

    /// <summary>Whether the service registers itself. Default true.</summary>
    public bool Register { get; set; } = true;

    /// <summary>Instance id. Default: <c>&lt;service&gt;-&lt;host&gt;-&lt;port&gt;</c>.</summary>
    public string? InstanceId { get; set; }

    /// <summary>Address other services reach this one at. Default: the machine's host name.</summary>
    public string? Address { get; set; }

    /// <summary>Port to advertise. Default: the port the server listens on.</summary>
    public int? Port { get; set; }

    /// <summary>Version to advertise. Default: the entry assembly's version.</summary>
    public string? Version { get; set; }

    /// <summary>Tags to advertise.</summary>
    public string[] Tags { get; set; } = [];

    /// <summary>Metadata to advertise.</summary>
    public Dictionary<string, string> Metadata { get; set; } = [];

    /// <summary>Path Fundament checks actively (HTTP check). Default <c>/health/ready</c>; ignored when <see cref="Ttl"/> is set.</summary>
    public string HealthPath { get; set; } = "/health/ready";

    /// <summary>HTTP check interval. Default <c>10s</c>.</summary>
    public string CheckInterval { get; set; } = "10s";

    /// <summary>HTTP check timeout. Default <c>2s</c>.</summary>
    public string CheckTimeout { get; set; } = "2s";

    /// <summary>When set (e.g. <c>15s</c>), the service heartbeats instead of being checked.</summary>
    public string? Ttl { get; set; }

    /// <summary>Fundament removes the instance after it has been critical this long. Default <c>1m</c>.</summary>
    public string DeregisterAfter { get; set; } = "1m";

    /// <summary>Whether configuration from Fundament is added and followed live. Default true.</summary>
    public bool Configuration { get; set; } = true;

    /// <summary>How long a secret read stays cached. Default 5 minutes.</summary>
    public TimeSpan SecretCacheTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gateway routes the service serves, registered with it. Each path must lie inside the
    /// service's route claims (by default <c>/&lt;service&gt;</c>). None by default.
    /// </summary>
    public List<FundamentRouteOptions> Routes { get; set; } = [];
}

/// <summary>One gateway route, section <c>Fundament:Client:Routes:&lt;n&gt;</c>; see docs/configuration.md for every field.</summary>
public sealed class FundamentRouteOptions
{
    /// <summary>Required: a route template such as <c>/orders/{**rest}</c>.</summary>
    public string? Path { get; set; }

    /// <summary><c>anonymous</c>, <c>authenticated</c> (default) or <c>role:&lt;name&gt;</c>.</summary>
    public string? Auth { get; set; }

    /// <summary>What the service receives as <c>Authorization</c>: <c>exchange</c> (default: a token for audience <c>service:&lt;name&gt;</c>), <c>none</c> or <c>passthrough</c>.</summary>
    public string? ForwardAuthorization { get; set; }

    /// <summary>Optional: prefix removed before forwarding.</summary>
    public string? StripPrefix { get; set; }

    /// <summary>Optional: a gateway rate-limit policy name.</summary>
    public string? RateLimit { get; set; }

    /// <summary>Optional: a gateway CORS policy name.</summary>
    public string? Cors { get; set; }

    /// <summary>Optional: upstream timeout such as <c>30s</c>.</summary>
    public string? Timeout { get; set; }
}
