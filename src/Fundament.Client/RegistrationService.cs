using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Hosting;

namespace Fundament.Client;

/// <summary>
/// Registers the service once the server listens (retrying while Fundament is unreachable),
/// heartbeats when it uses a TTL (an HTTP-checked instance checks every 15 s that it is still
/// registered), registers again when Fundament has removed it, and deregisters on a graceful
/// shutdown (SIGTERM) before the server stops taking requests.
/// </summary>
internal sealed partial class RegistrationService(
    FundamentApi api,
    FundamentClientOptions options,
    IServer server,
    IHostApplicationLifetime lifetime,
    ILogger<RegistrationService> logger) : BackgroundService
{
    /// <summary>How often an HTTP-checked instance confirms it is still registered.</summary>
    private static readonly TimeSpan ExistenceCheckInterval = TimeSpan.FromSeconds(15);

    private string? _instanceId;

    /// <summary>The registered instance id, once registered.</summary>
    public string? InstanceId => _instanceId;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled(stoppingToken)))
        {
            try
            {
                await started.Task.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        var body = Body();
        var delay = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var answer = await api.RegisterAsync(body, stoppingToken).ConfigureAwait(false);
                _instanceId = answer.GetProperty("instanceId").GetString();
                LogRegistered(logger, _instanceId!, options.Service!);
                var interval = options.Ttl is null
                    ? ExistenceCheckInterval
                    : ParseSeconds(answer.TryGetProperty("heartbeatInterval", out var h) ? h.GetString() : null) ?? TimeSpan.FromSeconds(5);
                while (!stoppingToken.IsCancellationRequested)
                {
                    await Task.Delay(interval, stoppingToken).ConfigureAwait(false);
                    try
                    {
                        await api.HeartbeatAsync(_instanceId!, stoppingToken).ConfigureAwait(false);
                    }
                    catch (HttpRequestException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
                    {
                        // Removed (critical longer than deregisterAfter, or by an operator): register again.
                        break;
                    }
                    catch (HttpRequestException ex) when (ex.StatusCode == HttpStatusCode.Conflict && options.Ttl is null)
                    {
                        // An HTTP-checked instance answers 409 to a heartbeat: it still exists, nothing to do.
                    }
                    catch (HttpRequestException ex)
                    {
                        LogHeartbeatFailed(logger, ex.Message);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (HttpRequestException ex)
            {
                LogRegistrationFailed(logger, options.Service!, ex.Message, delay.TotalSeconds);
                try
                {
                    await Task.Delay(delay, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                delay = TimeSpan.FromSeconds(Math.Min(30, delay.TotalSeconds * 2));
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_instanceId is { } id)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                await api.DeregisterAsync(id, timeout.Token).ConfigureAwait(false);
                LogDeregistered(logger, id);
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
            {
                // Fundament removes it after deregisterAfter anyway.
                LogDeregistrationFailed(logger, id, ex.Message);
            }
        }
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    private Dictionary<string, object?> Body()
    {
        var listen = server.Features.Get<IServerAddressesFeature>()?.Addresses.Select(a => new Uri(a.Replace("://+", "://localhost", StringComparison.Ordinal).Replace("://*", "://localhost", StringComparison.Ordinal)))
            .FirstOrDefault();
        var port = options.Port ?? listen?.Port ?? 80;
        var address = options.Address ?? Dns.GetHostName();
        var instanceId = options.InstanceId ?? Sanitize($"{options.Service}-{address}-{port}");
        var body = new Dictionary<string, object?>
        {
            ["service"] = options.Service,
            ["instanceId"] = instanceId,
            ["address"] = address,
            ["port"] = port,
            ["scheme"] = listen?.Scheme ?? "http",
            ["version"] = options.Version ?? System.Reflection.Assembly.GetEntryAssembly()?.GetName().Version?.ToString(3),
            ["environment"] = options.Environment,
            ["tags"] = options.Tags,
            ["metadata"] = options.Metadata,
            ["deregisterAfter"] = options.DeregisterAfter,
        };
        if (options.Routes.Count > 0)
        {
            body["routes"] = options.Routes.Select(r => new Dictionary<string, string?>
            {
                ["path"] = r.Path,
                ["auth"] = r.Auth,
                ["forwardAuthorization"] = r.ForwardAuthorization,
                ["stripPrefix"] = r.StripPrefix,
                ["rateLimit"] = r.RateLimit,
                ["cors"] = r.Cors,
                ["timeout"] = r.Timeout,
            }.Where(f => f.Value is not null).ToDictionary()).ToList();
        }
        body["check"] = options.Ttl is { } ttl
            ? new Dictionary<string, string> { ["ttl"] = ttl }
            : new Dictionary<string, string> { ["http"] = options.HealthPath, ["interval"] = options.CheckInterval, ["timeout"] = options.CheckTimeout };
        return body;
    }

    private static string Sanitize(string value) => Regex.Replace(value, "[^A-Za-z0-9._:-]", "-");

    private static TimeSpan? ParseSeconds(string? text)
    {
        if (text is null)
        {
            return null;
        }
        var match = Regex.Match(text, "^(?:(\\d+)m)?(?:(\\d+)s)?$");
        if (!match.Success)
        {
            return null;
        }
        var minutes = match.Groups[1].Success ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var seconds = match.Groups[2].Success ? int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var value = TimeSpan.FromMinutes(minutes) + TimeSpan.FromSeconds(seconds);
        return value > TimeSpan.Zero ? value : null;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Registered instance {InstanceId} of {Service} with Fundament")]
    private static partial void LogRegistered(ILogger logger, string instanceId, string service);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Registering {Service} with Fundament failed ({Reason}); retrying in {Seconds}s")]
    private static partial void LogRegistrationFailed(ILogger logger, string service, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Heartbeat to Fundament failed: {Reason}")]
    private static partial void LogHeartbeatFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deregistered instance {InstanceId}")]
    private static partial void LogDeregistered(ILogger logger, string instanceId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deregistering {InstanceId} failed: {Reason}")]
    private static partial void LogDeregistrationFailed(ILogger logger, string instanceId, string reason);
}
