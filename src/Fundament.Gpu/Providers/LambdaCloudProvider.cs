using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Fundament.Gpu.Placement;

namespace Fundament.Gpu.Providers;

/// <summary>
/// Lambda Cloud (docs.lambda.ai/api/cloud): <c>GET /api/v1/instance-types</c> lists each type with
/// <c>price_cents_per_hour</c> and <c>regions_with_capacity_available</c> (one offer per type and
/// region); <c>POST /api/v1/instance-operations/launch</c> and <c>/terminate</c>;
/// <c>GET /api/v1/instances/{id}</c>. Errors are <c>{"error": {"code": "...", "message": "..."}}</c>,
/// e.g. <c>instance-operations/launch/insufficient-capacity</c>. Launches are limited to one per 12 s:
/// the adapter refuses a second one sooner itself (rate-limited) instead of spending the request.
/// </summary>
public sealed partial class LambdaCloudProvider(HttpClient http, GpuProviderConnection connection, TimeProvider time, IReadOnlyList<string> sshKeyNames) : IGpuProvider
{
    public static readonly TimeSpan LaunchInterval = TimeSpan.FromSeconds(12);

    private readonly Lock _gate = new();
    private DateTimeOffset _lastLaunch = DateTimeOffset.MinValue;

    public string Name => "lambda";

    public async Task<IReadOnlyList<GpuOffer>> OffersAsync(GpuConstraints constraints, CancellationToken cancellationToken)
    {
        var (status, body) = await ProviderHttp.SendAsync(http, connection, HttpMethod.Get, "api/v1/instance-types", null, cancellationToken);
        if (status != HttpStatusCode.OK)
        {
            throw Refusal(status, body);
        }
        var offers = new List<GpuOffer>();
        foreach (var (name, entry) in body?["data"]?.AsObject() ?? [])
        {
            var type = entry?["instance_type"];
            if (type is null)
            {
                continue;
            }
            var gpus = type["specs"]?["gpus"]?.GetValue<int>() ?? 0;
            var description = type["gpu_description"]?.GetValue<string>() ?? type["description"]?.GetValue<string>() ?? name;
            // "A10 (24 GB PCIe)" → A10, 24 GB per GPU.
            var memory = MemoryPattern().Match(description) is { Success: true } m ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
            var gpu = description.Split('(')[0].Trim();
            var price = (type["price_cents_per_hour"]?.GetValue<int>() ?? 0) / 100m;
            foreach (var region in entry!["regions_with_capacity_available"]?.AsArray() ?? [])
            {
                offers.Add(new GpuOffer(Name, $"{name}@{region!["name"]!.GetValue<string>()}", region["name"]!.GetValue<string>(), gpu, gpus, memory, price, false, true, time.GetUtcNow()));
            }
        }
        return offers;
    }

    public async Task<string> LaunchAsync(GpuOffer offer, GpuLaunchRequest request, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var now = time.GetUtcNow();
            if (now - _lastLaunch < LaunchInterval)
            {
                throw new GpuLaunchException(LaunchFailure.RateLimited, $"lambda allows one launch per {LaunchInterval.TotalSeconds:0} s; the last was {(now - _lastLaunch).TotalSeconds:0} s ago");
            }
            _lastLaunch = now;
        }
        var parts = offer.Id.Split('@');
        var body = new JsonObject
        {
            ["region_name"] = parts[1],
            ["instance_type_name"] = parts[0],
            ["ssh_key_names"] = new JsonArray([.. sshKeyNames.Select(k => (JsonNode)k)]),
            ["quantity"] = 1,
            ["name"] = request.Name,
            ["user_data"] = request.StartupScript,
        };
        var (status, answer) = await ProviderHttp.SendAsync(http, connection, HttpMethod.Post, "api/v1/instance-operations/launch", body, cancellationToken);
        if (status == HttpStatusCode.OK && answer?["data"]?["instance_ids"]?.AsArray().FirstOrDefault() is { } id)
        {
            return id.GetValue<string>();
        }
        throw Refusal(status, answer);
    }

    public async Task<GpuInstanceState> StatusAsync(string instanceId, CancellationToken cancellationToken)
    {
        var (status, body) = await ProviderHttp.SendAsync(http, connection, HttpMethod.Get, $"api/v1/instances/{Uri.EscapeDataString(instanceId)}", null, cancellationToken);
        if (status == HttpStatusCode.NotFound)
        {
            return GpuInstanceState.Terminated;
        }
        if (status != HttpStatusCode.OK)
        {
            throw Refusal(status, body);
        }
        return body?["data"]?["status"]?.GetValue<string>() switch
        {
            "active" => GpuInstanceState.Running,
            "booting" => GpuInstanceState.Starting,
            "unhealthy" => GpuInstanceState.Failed,
            "terminated" or "terminating" => GpuInstanceState.Terminated,
            _ => GpuInstanceState.Unknown,
        };
    }

    public async Task TerminateAsync(string instanceId, CancellationToken cancellationToken)
    {
        var (status, body) = await ProviderHttp.SendAsync(http, connection, HttpMethod.Post, "api/v1/instance-operations/terminate",
            new JsonObject { ["instance_ids"] = new JsonArray(instanceId) }, cancellationToken);
        if (status is HttpStatusCode.OK or HttpStatusCode.NotFound)
        {
            return;
        }
        var error = Refusal(status, body);
        if (body?["error"] is JsonObject { } e && e["code"]?.ToString() is "global/object-does-not-exist")
        {
            return;
        }
        throw error;
    }

    internal static GpuLaunchException Refusal(HttpStatusCode status, JsonNode? body)
    {
        var code = body?["error"] is JsonObject e ? e["code"]?.ToString() ?? "" : "";
        var message = ProviderHttp.Trim(body?["error"] is JsonObject error ? error["message"]?.ToString() ?? error.ToJsonString() : body?["message"]?.ToString() ?? body?.ToString() ?? status.ToString());
        var failure = code switch
        {
            "instance-operations/launch/insufficient-capacity" => LaunchFailure.Capacity,
            "global/quota-exceeded" or "instance-operations/launch/quota-exceeded" or "global/account-inactive" => LaunchFailure.Quota,
            "global/invalid-api-key" or "global/unauthorized" => LaunchFailure.Auth,
            "global/too-many-requests" => LaunchFailure.RateLimited,
            _ => ProviderHttp.ByStatus(status),
        };
        return new GpuLaunchException(failure, string.Create(CultureInfo.InvariantCulture, $"lambda {(int)status} {code}: {message}"));
    }

    [GeneratedRegex(@"(\d+(?:\.\d+)?)\s*GB", RegexOptions.CultureInvariant)]
    private static partial Regex MemoryPattern();
}
