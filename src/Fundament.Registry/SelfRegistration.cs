using System.Globalization;
using System.Net;
using System.Text.Json;
using Fundament.Registry.Instances;
using Fundament.Registry.Routes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Hosting;

namespace Fundament.Registry;

/// <summary>Section <c>Fundament:Registry:Self</c>: Fundament registering its own API as a service.</summary>
public sealed class SelfRegistrationOptions
{
    public const string SectionName = RegistryOptions.SectionName + ":Self";

    /// <summary>
    /// Register each control node (and each media node that is not also a control node) as an
    /// instance of service <c>fundament</c> whose routes expose the API through the gateway like any
    /// other service. Default false.
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>Where gateways reach this node's API. Default: the first API address the server listens on (a wildcard host becomes the machine's IPv4 address).</summary>
    public string? AdvertiseUrl { get; set; }

    /// <summary>
    /// Paths routed to the API. Default <c>/api/{**rest}</c>, <c>/oauth2/{**rest}</c>, <c>/.well-known/{**rest}</c>,
    /// <c>/openapi/{**rest}</c>. Each must lie under one of Fundament's reserved paths.
    /// </summary>
    public string[] Paths { get; set; } = ["/api/{**rest}", "/oauth2/{**rest}", "/.well-known/{**rest}", "/openapi/{**rest}"];

    /// <summary>
    /// Paths a media node that does not run the control role registers instead: the media API it
    /// serves. Default <c>/api/v1/media/{**rest}</c>; the gateway sends these only to the nodes that
    /// registered them, and the rest of <c>/api</c> to control nodes.
    /// </summary>
    public string[] MediaPaths { get; set; } = ["/api/v1/media/{**rest}"];

    /// <summary>Largest request body the gateway passes on the media paths (uploads). Default 4 GiB, as <c>Fundament:Media:MaxUploadBytes</c>; keep them equal.</summary>
    public long MediaMaxBodySize { get; set; } = 4L << 30;

    /// <summary>How long one request on the media paths may take through the gateway (a large upload or download). Default 1 hour, the most a route may declare.</summary>
    public TimeSpan MediaTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Optional gateway rate-limit policy for those routes (the API still enforces its own login lockout).</summary>
    public string? RateLimit { get; set; }

    /// <summary>TTL of the registration; the node heartbeats at a third of it, and a dead node drops out after it. Default 15s.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(15);
}

internal sealed class SelfRegistrationOptionsValidator : SettingsValidator<SelfRegistrationOptions>
{
    protected override string Section => SelfRegistrationOptions.SectionName;

    protected override void Check(SelfRegistrationOptions o, SettingsProblems problems)
    {
        problems.Between(o.Ttl, TimeSpan.FromSeconds(3), TimeSpan.FromMinutes(10));
        problems.AbsoluteHttpUrl(o.AdvertiseUrl);
        problems.Require(o.Paths.Length is > 0 and <= 32 && o.Paths.All(p => p.StartsWith('/')), o.Paths, "must hold 1 to 32 paths starting with '/'.");
        problems.Require(o.Paths.All(p => new RouteOwnership([]).Check(RoutePaths.FundamentService, p).Allowed), o.Paths,
            "must lie under Fundament's reserved paths (" + string.Join(", ", RoutePaths.Reserved) + ").");
        problems.AtLeast(o.MediaMaxBodySize, 1);
        problems.Between(o.MediaTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        problems.Require(o.MediaPaths.Length is > 0 and <= 32 && o.MediaPaths.All(p => p.StartsWith('/')), o.MediaPaths, "must hold 1 to 32 paths starting with '/'.");
        problems.Require(o.MediaPaths.All(p => new RouteOwnership([]).Check(RoutePaths.FundamentService, p).Allowed), o.MediaPaths,
            "must lie under Fundament's reserved paths (" + string.Join(", ", RoutePaths.Reserved) + ").");
    }
}

/// <summary>
/// Registers this control (or media) node as service <c>fundament</c> once the server listens, heartbeats its
/// TTL, registers again if it was removed, and deregisters on shutdown. The routes are anonymous at
/// the edge (every API endpoint enforces its own policy, and login must stay reachable) and pass
/// the caller's <c>Authorization</c> header through, since the upstream is its issuer.
/// </summary>
internal sealed partial class SelfRegistration(
    RegistryStore store,
    IServer server,
    IConfiguration configuration,
    IOptions<SelfRegistrationOptions> options,
    RoleSet roles,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<SelfRegistration> logger) : BackgroundService
{
    public const string ServiceName = Routes.RoutePaths.FundamentService;

    private InstanceDefinition? _definition;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        if (stoppingToken.IsCancellationRequested || Definition() is not { } definition)
        {
            return;
        }
        _definition = definition;
        var o = options.Value;
        using var timer = new PeriodicTimer(o.Ttl / 3, time);
        var registered = false;
        while (true)
        {
            try
            {
                if (!registered || !await store.HeartbeatAsync(definition.Id, "passing", "heartbeat from the node itself", stoppingToken))
                {
                    if (await store.RegisterAsync(definition, "system:self-registration", stoppingToken) is null)
                    {
                        // The id is held by another service (it cannot be, through the API): keep trying, loudly.
                        LogIdTaken(logger, definition.Id);
                        registered = false;
                    }
                    else
                    {
                        if (!registered)
                        {
                            LogRegistered(logger, definition.Id, $"{definition.Scheme}://{definition.Address}:{definition.Port}");
                        }
                        registered = true;
                    }
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogFailed(logger, ex);
            }
            try
            {
                if (!await timer.WaitForNextTickAsync(stoppingToken))
                {
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (_definition is { } definition)
        {
            try
            {
                await store.DeregisterAsync(definition.Id, "the node shut down", cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogFailed(logger, ex);
            }
        }
    }

    private InstanceDefinition? Definition()
    {
        var o = options.Value;
        var url = o.AdvertiseUrl ?? ApiAddress();
        if (url is null || !Uri.TryCreate(url.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri))
        {
            LogNoAddress(logger);
            return null;
        }
        var host = uri.Host is "0.0.0.0" or "[::]" or "::" ? MachineAddress() : uri.Host.Trim('[', ']');
        // Control nodes take the API; media nodes take the media paths, with room for uploads (a node running both registers both).
        var declared = new List<Dictionary<string, object>>();
        if (roles.Runs(FundamentRoles.Control))
        {
            declared.AddRange(o.Paths.Select(p => Route(p, o.RateLimit)));
        }
        if (roles.Runs(FundamentRoles.Media))
        {
            declared.AddRange(o.MediaPaths.Select(p =>
            {
                var route = Route(p, o.RateLimit);
                route["maxBodySize"] = o.MediaMaxBodySize;
                route["timeout"] = $"{(long)o.MediaTimeout.TotalSeconds}s";
                return route;
            }));
        }
        var routes = JsonSerializer.Serialize(declared);
        var id = $"{ServiceName}-{host}-{uri.Port.ToString(CultureInfo.InvariantCulture)}".ToLowerInvariant();
        return new InstanceDefinition(id, ServiceName, "*", host, uri.Port, uri.Scheme, typeof(SelfRegistration).Assembly.GetName().Version?.ToString(3),
            ["fundament"], new Dictionary<string, string>(), routes, "ttl", null, null, null, o.Ttl, o.Ttl * 4);
    }

    private static Dictionary<string, object> Route(string path, string? rateLimit)
    {
        var route = new Dictionary<string, object> { ["path"] = path, ["auth"] = "anonymous", ["forwardAuthorization"] = "passthrough" };
        if (rateLimit is not null)
        {
            route["rateLimit"] = rateLimit;
        }
        return route;
    }

    /// <summary>For a wildcard listener: this machine's first non-loopback IPv4 address (a container's or pod's IP), else its host name.</summary>
    private static string MachineAddress()
    {
        var name = Dns.GetHostName();
        try
        {
            return Dns.GetHostAddresses(name).FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))?.ToString() ?? name;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return name;
        }
    }

    /// <summary>The first address the server listens on that is not a gateway port.</summary>
    private string? ApiAddress()
    {
        var gatewayPorts = (configuration["Fundament:Gateway:Urls"] ?? "http://localhost:8080")
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(u => Uri.TryCreate(u.Replace("://+", "://h", StringComparison.Ordinal).Replace("://*", "://h", StringComparison.Ordinal), UriKind.Absolute, out var parsed) ? parsed.Port : -1)
            .ToHashSet();
        return server.Features.Get<IServerAddressesFeature>()?.Addresses
            .FirstOrDefault(a => Uri.TryCreate(a.Replace("://+", "://h", StringComparison.Ordinal).Replace("://*", "://h", StringComparison.Ordinal).Replace("://[::]", "://h", StringComparison.Ordinal), UriKind.Absolute, out var parsed) && !gatewayPorts.Contains(parsed.Port));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Registered this node as {InstanceId} at {Url}; the gateway routes its API")]
    private static partial void LogRegistered(ILogger logger, string instanceId, string url);

    [LoggerMessage(Level = LogLevel.Error, Message = "Self-registration: instance id {InstanceId} belongs to another service; the API is not routed through the gateway until it is freed")]
    private static partial void LogIdTaken(ILogger logger, string instanceId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Self-registration found no API address; set Fundament:Registry:Self:AdvertiseUrl")]
    private static partial void LogNoAddress(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Self-registration failed; retrying at the next heartbeat")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
