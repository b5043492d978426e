using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Fundament.Gpu.Placement;

namespace Fundament.Gpu.Providers;

/// <summary>
/// RunPod's GraphQL API (docs.runpod.io/sdks/graphql/manage-pods): <c>gpuTypes</c> with their secure
/// and community prices, <c>podFindAndDeployOnDemand</c> and <c>podRentInterruptable</c>, <c>pod</c>,
/// <c>podTerminate</c>. The price trap: a GPU type has a secure-cloud and a community-cloud price, and
/// <c>lowestPrice</c> reports the lower of the two, while a pod deployed without saying which cloud
/// may land on the dearer one. So each cloud is its own offer, every launch names its cloud, and a
/// pod whose <c>costPerHr</c> comes back above the offer's price is terminated at once and refused.
/// </summary>
public sealed class RunPodProvider(HttpClient http, GpuProviderConnection connection, TimeProvider time, string image) : IGpuProvider
{
    /// <summary>How far the price a pod is billed at may exceed its offer's before the launch counts as the price trap.</summary>
    public const decimal PriceTolerance = 0.01m;

    private const string GpuTypesQuery = """
        query GpuTypes($count: Int) { gpuTypes { id displayName memoryInGb secureCloud communityCloud securePrice communityPrice communitySpotPrice secureSpotPrice
          lowestPrice(input: { gpuCount: $count }) { stockStatus } } }
        """;

    private const string DeployMutation = """
        mutation Deploy($input: PodFindAndDeployOnDemandInput) { podFindAndDeployOnDemand(input: $input) { id costPerHr desiredStatus } }
        """;

    private const string RentMutation = """
        mutation Rent($input: PodRentInterruptableInput!) { podRentInterruptable(input: $input) { id costPerHr desiredStatus } }
        """;

    public string Name => "runpod";

    public async Task<IReadOnlyList<GpuOffer>> OffersAsync(GpuConstraints constraints, CancellationToken cancellationToken)
    {
        var data = await QueryAsync(GpuTypesQuery, new JsonObject { ["count"] = constraints.Count }, cancellationToken);
        var offers = new List<GpuOffer>();
        foreach (var type in data["gpuTypes"]?.AsArray() ?? [])
        {
            var memory = type!["memoryInGb"]?.GetValue<double>() ?? 0;
            if (memory < constraints.MinVramGb)
            {
                continue;
            }
            var id = type["id"]!.GetValue<string>();
            var name = type["displayName"]?.GetValue<string>() ?? id;
            var available = type["lowestPrice"]?["stockStatus"]?.GetValue<string>() is not (null or "None");
            void Add(string cloud, bool spot, JsonNode? price)
            {
                if (price is not null && price.GetValue<double>() > 0)
                {
                    offers.Add(new GpuOffer(Name, $"{id}|{cloud}|{(spot ? "spot" : "on-demand")}", cloud.ToLowerInvariant(), name, constraints.Count, memory,
                        decimal.Round((decimal)price.GetValue<double>() * constraints.Count, 4), spot, available, time.GetUtcNow()));
                }
            }
            if (type["secureCloud"]?.GetValue<bool>() == true)
            {
                Add("SECURE", false, type["securePrice"]);
                Add("SECURE", true, type["secureSpotPrice"]);
            }
            if (type["communityCloud"]?.GetValue<bool>() == true)
            {
                Add("COMMUNITY", false, type["communityPrice"]);
                Add("COMMUNITY", true, type["communitySpotPrice"]);
            }
        }
        return offers;
    }

    public async Task<string> LaunchAsync(GpuOffer offer, GpuLaunchRequest request, CancellationToken cancellationToken)
    {
        var parts = offer.Id.Split('|');
        var input = new JsonObject
        {
            ["cloudType"] = parts[1],
            ["gpuCount"] = offer.Count,
            ["gpuTypeId"] = parts[0],
            ["name"] = request.Name,
            ["imageName"] = image,
            ["dockerArgs"] = "",
            ["containerDiskInGb"] = 40,
            ["volumeInGb"] = 0,
            ["env"] = new JsonArray(new JsonObject { ["key"] = "FUNDAMENT_STARTUP", ["value"] = request.StartupScript }),
        };
        JsonNode? pod;
        if (offer.Spot)
        {
            // Interruptible pods are billed at the bid: bid the offer's price, which placement ranked and budgeted.
            input["bidPerGpu"] = (double)(offer.PricePerHour / offer.Count);
            pod = (await QueryAsync(RentMutation, new JsonObject { ["input"] = input }, cancellationToken))["podRentInterruptable"];
        }
        else
        {
            pod = (await QueryAsync(DeployMutation, new JsonObject { ["input"] = input }, cancellationToken))["podFindAndDeployOnDemand"];
        }
        var podId = pod?["id"]?.GetValue<string>() ?? throw new GpuLaunchException(LaunchFailure.Capacity, "runpod deployed no pod");
        var billed = pod["costPerHr"] is { } cost ? (decimal)cost.GetValue<double>() : offer.PricePerHour;
        var agreed = offer.PricePerHour;
        if (billed > agreed * (1 + PriceTolerance))
        {
            // Terminated whatever the caller's cancellation says: a pod billed above its offer must not keep running.
            string outcome;
            try
            {
                await TerminateAsync(podId, CancellationToken.None);
                outcome = "the pod was terminated at once";
            }
            catch (Exception ex) when (ex is GpuLaunchException or HttpRequestException)
            {
                outcome = $"terminating pod {podId} failed ({ex.Message}): terminate it by hand";
            }
            throw new GpuLaunchException(LaunchFailure.Capacity, string.Create(CultureInfo.InvariantCulture,
                $"runpod billed ${billed:0.000}/h for an offer of ${agreed:0.000}/h ({parts[1]} cloud); {outcome}"));
        }
        return podId;
    }

    public async Task<GpuInstanceState> StatusAsync(string instanceId, CancellationToken cancellationToken)
    {
        var data = await QueryAsync("query Pod($id: String) { pod(input: { podId: $id }) { id desiredStatus podType runtime { uptimeInSeconds } } }",
            new JsonObject { ["id"] = instanceId }, cancellationToken);
        var pod = data["pod"];
        if (pod is null)
        {
            return GpuInstanceState.Terminated;
        }
        var interruptible = pod["podType"]?.GetValue<string>() == "INTERRUPTABLE";
        return pod["desiredStatus"]?.GetValue<string>() switch
        {
            "RUNNING" => pod["runtime"] is null ? GpuInstanceState.Starting : GpuInstanceState.Running,
            "EXITED" when interruptible => GpuInstanceState.Preempted,
            "EXITED" or "TERMINATED" => GpuInstanceState.Terminated,
            "CREATED" => GpuInstanceState.Starting,
            _ => GpuInstanceState.Unknown,
        };
    }

    public async Task TerminateAsync(string instanceId, CancellationToken cancellationToken)
    {
        try
        {
            await QueryAsync("mutation Terminate($id: String!) { podTerminate(input: { podId: $id }) }", new JsonObject { ["id"] = instanceId }, cancellationToken);
        }
        catch (GpuLaunchException ex) when (ex.Message.Contains("not found", StringComparison.OrdinalIgnoreCase))
        {
        }
    }

    private async Task<JsonNode> QueryAsync(string query, JsonObject variables, CancellationToken cancellationToken)
    {
        var (status, body) = await ProviderHttp.SendAsync(http, connection, HttpMethod.Post, "graphql", new JsonObject { ["query"] = query, ["variables"] = variables }, cancellationToken);
        if (body?["errors"] is JsonArray { Count: > 0 } errors)
        {
            throw Refusal(status, (errors[0] as JsonObject)?["message"]?.ToString() ?? "error");
        }
        if (status != HttpStatusCode.OK || body?["data"] is not JsonObject data)
        {
            throw Refusal(status, body?.ToString() ?? status.ToString());
        }
        return data;
    }

    /// <summary>RunPod reports refusals as GraphQL error messages, often with HTTP 200.</summary>
    internal static GpuLaunchException Refusal(HttpStatusCode status, string message)
    {
        var failure = message switch
        {
            _ when message.Contains("no longer any instances available", StringComparison.OrdinalIgnoreCase)
                || message.Contains("not enough free gpus", StringComparison.OrdinalIgnoreCase) => LaunchFailure.Capacity,
            _ when message.Contains("balance", StringComparison.OrdinalIgnoreCase)
                || message.Contains("spend limit", StringComparison.OrdinalIgnoreCase)
                || message.Contains("quota", StringComparison.OrdinalIgnoreCase) => LaunchFailure.Quota,
            _ when message.Contains("unauthorized", StringComparison.OrdinalIgnoreCase) || status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => LaunchFailure.Auth,
            _ => ProviderHttp.ByStatus(status),
        };
        return new GpuLaunchException(failure, string.Create(CultureInfo.InvariantCulture, $"runpod {(int)status}: {ProviderHttp.Trim(message)}"));
    }
}
