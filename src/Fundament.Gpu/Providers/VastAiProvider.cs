using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Fundament.Gpu.Placement;

namespace Fundament.Gpu.Providers;

/// <summary>
/// Vast.ai (docs.vast.ai/api-reference): offers from <c>POST /api/v0/bundles/</c> (<c>gpu_ram</c> in MB,
/// <c>dph_total</c> in $/h for the whole machine), on-demand and interruptible (<c>type: bid</c>) listed
/// separately; launch is <c>PUT /api/v0/asks/{id}/</c> (a bid price for interruptible ones), answering
/// <c>new_contract</c>; state from <c>GET /api/v0/instances/{id}/</c>; <c>DELETE /api/v0/instances/{id}/</c>
/// destroys. An ask someone else took meanwhile is <c>no_such_ask</c>: capacity.
/// </summary>
public sealed class VastAiProvider(HttpClient http, GpuProviderConnection connection, TimeProvider time) : IGpuProvider
{
    public string Name => "vast";

    public async Task<IReadOnlyList<GpuOffer>> OffersAsync(GpuConstraints constraints, CancellationToken cancellationToken)
    {
        var offers = new List<GpuOffer>();
        foreach (var (type, spot) in new[] { ("on-demand", false), ("bid", true) })
        {
            var query = new JsonObject
            {
                ["rentable"] = new JsonObject { ["eq"] = true },
                ["num_gpus"] = new JsonObject { ["eq"] = constraints.Count },
                ["gpu_ram"] = new JsonObject { ["gte"] = constraints.MinVramGb * 1000 },
                ["type"] = type,
                ["order"] = new JsonArray(new JsonArray("dph_total", "asc")),
                ["limit"] = 64,
            };
            var (status, body) = await ProviderHttp.SendAsync(http, connection, HttpMethod.Post, "api/v0/bundles/", query, cancellationToken);
            if (status != HttpStatusCode.OK)
            {
                throw Refusal(status, body);
            }
            foreach (var offer in body?["offers"]?.AsArray() ?? [])
            {
                if (offer is null)
                {
                    continue;
                }
                var price = spot ? offer["min_bid"]?.GetValue<double>() ?? offer["dph_total"]!.GetValue<double>() : offer["dph_total"]!.GetValue<double>();
                offers.Add(new GpuOffer(
                    Name, offer["id"]!.ToString() + (spot ? ":bid" : ""), offer["geolocation"]?.GetValue<string>() ?? "unknown",
                    offer["gpu_name"]!.GetValue<string>(), offer["num_gpus"]!.GetValue<int>(),
                    Math.Round(offer["gpu_ram"]!.GetValue<double>() / 1000, 1), decimal.Round((decimal)price, 4), spot,
                    offer["rentable"]?.GetValue<bool>() ?? true, time.GetUtcNow()));
            }
        }
        return offers;
    }

    public async Task<string> LaunchAsync(GpuOffer offer, GpuLaunchRequest request, CancellationToken cancellationToken)
    {
        var ask = offer.Id.Split(':')[0];
        var body = new JsonObject
        {
            ["client_id"] = "me",
            ["image"] = "fundament/gpu-worker:latest",
            ["label"] = request.Name,
            ["onstart"] = request.StartupScript,
            ["runtype"] = "args",
            ["disk"] = 40,
        };
        if (offer.Spot)
        {
            // Interruptible machines are billed at the bid: bid the offer's price, which placement ranked and budgeted.
            body["price"] = (double)offer.PricePerHour;
        }
        var (status, answer) = await ProviderHttp.SendAsync(http, connection, HttpMethod.Put, $"api/v0/asks/{Uri.EscapeDataString(ask)}/", body, cancellationToken);
        if (status == HttpStatusCode.OK && answer?["success"]?.GetValue<bool>() == true && answer["new_contract"] is { } contract)
        {
            return contract.ToString();
        }
        throw Refusal(status, answer);
    }

    public async Task<GpuInstanceState> StatusAsync(string instanceId, CancellationToken cancellationToken)
    {
        var (status, body) = await ProviderHttp.SendAsync(http, connection, HttpMethod.Get, $"api/v0/instances/{Uri.EscapeDataString(instanceId)}/", null, cancellationToken);
        if (status == HttpStatusCode.NotFound)
        {
            return GpuInstanceState.Terminated;
        }
        if (status != HttpStatusCode.OK)
        {
            throw Refusal(status, body);
        }
        var instance = body?["instances"];
        if (instance is null)
        {
            return GpuInstanceState.Terminated;
        }
        var actual = instance["actual_status"]?.GetValue<string>();
        var intended = instance["intended_status"]?.GetValue<string>();
        return (actual, intended) switch
        {
            ("running", _) => GpuInstanceState.Running,
            ("loading" or "created" or "scheduling", _) or (null, "running") => GpuInstanceState.Starting,
            // An interruptible instance outbid or reclaimed stops while its owner still wants it running.
            ("exited" or "stopped" or "offline", "running") => GpuInstanceState.Preempted,
            ("exited" or "stopped", _) => GpuInstanceState.Terminated,
            _ => GpuInstanceState.Unknown,
        };
    }

    public async Task TerminateAsync(string instanceId, CancellationToken cancellationToken)
    {
        var (status, body) = await ProviderHttp.SendAsync(http, connection, HttpMethod.Delete, $"api/v0/instances/{Uri.EscapeDataString(instanceId)}/", null, cancellationToken);
        if (status is not (HttpStatusCode.OK or HttpStatusCode.NotFound))
        {
            throw Refusal(status, body);
        }
    }

    /// <summary>Vast answers <c>{"success": false, "error": "...", "msg": "..."}</c>.</summary>
    internal static GpuLaunchException Refusal(HttpStatusCode status, JsonNode? body)
    {
        var error = body?["error"]?.ToString() ?? "";
        var message = ProviderHttp.Trim(body?["msg"]?.ToString() ?? body?["message"]?.ToString() ?? body?.ToString() ?? status.ToString());
        var failure = error switch
        {
            "no_such_ask" or "ask_not_available" or "not_available" => LaunchFailure.Capacity,
            "insufficient_credit" or "insufficient_funds" or "max_instances" => LaunchFailure.Quota,
            "auth_error" or "invalid_api_key" => LaunchFailure.Auth,
            _ => ProviderHttp.ByStatus(status),
        };
        return new GpuLaunchException(failure, string.Create(CultureInfo.InvariantCulture, $"vast {(int)status} {error}: {message}"));
    }
}
