using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Fundament.Tests.Gpu;

/// <summary>A local stand-in for a GPU cloud's API on loopback; records requests, checks the bearer key.</summary>
public abstract class FakeGpuCloud : IAsyncDisposable
{
    private WebApplication _app = null!;

    public const string Key = "test-key-7c1e";

    public ConcurrentQueue<string> Requests { get; } = new();

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>Answer every request with this status and body instead (a 429, a 500 ...).</summary>
    public (int Status, JsonObject Body)? Override { get; set; }

    /// <summary>Answer every request with this status and an HTML page: a proxy in front of the provider failing.</summary>
    public int? HtmlError { get; set; }

    protected abstract void Map(WebApplication app);

    protected async Task StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _app = builder.Build();
        _app.Use(async (context, next) =>
        {
            Requests.Enqueue($"{context.Request.Method} {context.Request.Path}");
            if (context.Request.Headers.Authorization.ToString() != "Bearer " + Key)
            {
                await Unauthorized(context);
                return;
            }
            if (HtmlError is { } html)
            {
                context.Response.StatusCode = html;
                context.Response.ContentType = "text/html";
                await context.Response.WriteAsync("<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>");
                return;
            }
            if (Override is { } o)
            {
                context.Response.StatusCode = o.Status;
                await context.Response.WriteAsJsonAsync(o.Body);
                return;
            }
            await next();
        });
        Map(_app);
        await _app.StartAsync();
        BaseUrl = new Uri(_app.Urls.First() + "/");
    }

    protected abstract Task Unauthorized(HttpContext context);

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Vast.ai's REST API as documented at https://docs.vast.ai/api-reference (search offers
/// <c>POST /api/v0/bundles/</c>, create <c>PUT /api/v0/asks/{id}/</c>, show and destroy
/// <c>/api/v0/instances/{id}/</c>): <c>gpu_ram</c> in MB, <c>dph_total</c> in $/h, <c>min_bid</c> for
/// interruptible offers, <c>{"success": false, "error": ..., "msg": ...}</c> on refusal.
/// </summary>
public sealed class FakeVastAi : FakeGpuCloud
{
    public List<JsonObject> Offers { get; } =
    [
        new() { ["id"] = 4711, ["gpu_name"] = "RTX 4090", ["num_gpus"] = 1, ["gpu_ram"] = 24564, ["dph_total"] = 0.412, ["min_bid"] = 0.29, ["geolocation"] = "Sweden, SE", ["rentable"] = true },
        new() { ["id"] = 4712, ["gpu_name"] = "RTX 3090", ["num_gpus"] = 1, ["gpu_ram"] = 24576, ["dph_total"] = 0.22, ["min_bid"] = 0.16, ["geolocation"] = "Germany, DE", ["rentable"] = true },
    ];

    /// <summary>Asks someone else rented meanwhile: creating on them answers no_such_ask.</summary>
    public HashSet<string> Taken { get; } = [];

    public bool OutOfCredit { get; set; }

    /// <summary>Contract id → (actual_status, intended_status).</summary>
    public ConcurrentDictionary<string, (string Actual, string Intended)> Instances { get; } = new();

    public ConcurrentQueue<JsonObject> Created { get; } = new();

    public static async Task<FakeVastAi> CreateAsync()
    {
        var fake = new FakeVastAi();
        await fake.StartAsync();
        return fake;
    }

    protected override Task Unauthorized(HttpContext context)
    {
        context.Response.StatusCode = 401;
        return context.Response.WriteAsJsonAsync(new JsonObject { ["success"] = false, ["error"] = "auth_error", ["msg"] = "Invalid user key" });
    }

    protected override void Map(WebApplication app)
    {
        app.MapPost("/api/v0/bundles/", async (HttpContext context) =>
        {
            var query = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            var minRam = query["gpu_ram"]?["gte"]?.GetValue<double>() ?? 0;
            var bid = query["type"]?.GetValue<string>() == "bid";
            var offers = Offers.Where(o => o["gpu_ram"]!.GetValue<int>() >= minRam)
                .Select(o => { var copy = o.DeepClone().AsObject(); if (!bid) { copy.Remove("min_bid"); } return (JsonNode)copy; });
            return Results.Json(new JsonObject { ["offers"] = new JsonArray([.. offers]) });
        });
        app.MapPut("/api/v0/asks/{id}/", async (string id, HttpContext context) =>
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            if (OutOfCredit)
            {
                return Results.Json(new JsonObject { ["success"] = false, ["error"] = "insufficient_credit", ["msg"] = "Your account lacks credit; see the billing page." }, statusCode: 402);
            }
            if (Taken.Contains(id) || Offers.All(o => o["id"]!.ToString() != id))
            {
                return Results.Json(new JsonObject { ["success"] = false, ["error"] = "no_such_ask", ["msg"] = $"Instance type by id {id} is not available." }, statusCode: 404);
            }
            Created.Enqueue(body);
            var contract = (7_835_600 + Created.Count).ToString(System.Globalization.CultureInfo.InvariantCulture);
            Instances[contract] = ("loading", "running");
            Taken.Add(id);
            return Results.Json(new JsonObject { ["success"] = true, ["new_contract"] = long.Parse(contract, System.Globalization.CultureInfo.InvariantCulture) });
        });
        app.MapGet("/api/v0/instances/{id}/", (string id) => Instances.TryGetValue(id, out var s)
            ? Results.Json(new JsonObject { ["instances"] = new JsonObject { ["id"] = long.Parse(id, System.Globalization.CultureInfo.InvariantCulture), ["actual_status"] = s.Actual, ["intended_status"] = s.Intended } })
            : Results.Json(new JsonObject { ["instances"] = null }));
        app.MapDelete("/api/v0/instances/{id}/", (string id) => Instances.TryRemove(id, out _)
            ? Results.Json(new JsonObject { ["success"] = true })
            : Results.Json(new JsonObject { ["success"] = false, ["error"] = "no_such_instance", ["msg"] = "Instance not found." }, statusCode: 404));
    }
}

/// <summary>
/// Lambda Cloud's API v1 as documented at https://docs.lambda.ai/api/cloud (instance types with
/// <c>price_cents_per_hour</c> and <c>regions_with_capacity_available</c>, launch and terminate under
/// <c>/api/v1/instance-operations/</c>, <c>{"error": {"code", "message", "suggestion"}}</c> on refusal).
/// </summary>
public sealed class FakeLambdaCloud : FakeGpuCloud
{
    /// <summary>Regions that list capacity and then refuse the launch anyway (the insufficient-capacity users meet).</summary>
    public HashSet<string> RefuseIn { get; } = [];

    public bool QuotaExceeded { get; set; }

    public ConcurrentDictionary<string, string> Instances { get; } = new();

    public ConcurrentQueue<JsonObject> Launched { get; } = new();

    public static async Task<FakeLambdaCloud> CreateAsync()
    {
        var fake = new FakeLambdaCloud();
        await fake.StartAsync();
        return fake;
    }

    private static IResult Error(int status, string code, string message) =>
        Results.Json(new JsonObject { ["error"] = new JsonObject { ["code"] = code, ["message"] = message, ["suggestion"] = "Try again later." } }, statusCode: status);

    protected override Task Unauthorized(HttpContext context)
    {
        context.Response.StatusCode = 401;
        return context.Response.WriteAsJsonAsync(new JsonObject { ["error"] = new JsonObject { ["code"] = "global/invalid-api-key", ["message"] = "API key was invalid, expired, or deleted." } });
    }

    protected override void Map(WebApplication app)
    {
        app.MapGet("/api/v1/instance-types", () => Results.Json(new JsonObject
        {
            ["data"] = new JsonObject
            {
                ["gpu_1x_a10"] = new JsonObject
                {
                    ["instance_type"] = new JsonObject
                    {
                        ["name"] = "gpu_1x_a10", ["description"] = "1x A10 (24 GB PCIe)", ["gpu_description"] = "A10 (24 GB PCIe)", ["price_cents_per_hour"] = 75,
                        ["specs"] = new JsonObject { ["vcpus"] = 30, ["memory_gib"] = 200, ["storage_gib"] = 1400, ["gpus"] = 1 },
                    },
                    ["regions_with_capacity_available"] = new JsonArray(
                        new JsonObject { ["name"] = "us-east-1", ["description"] = "Virginia, USA" },
                        new JsonObject { ["name"] = "europe-central-1", ["description"] = "Germany" }),
                },
                ["gpu_8x_h100_sxm5"] = new JsonObject
                {
                    ["instance_type"] = new JsonObject
                    {
                        ["name"] = "gpu_8x_h100_sxm5", ["description"] = "8x H100 (80 GB SXM5)", ["gpu_description"] = "H100 (80 GB SXM5)", ["price_cents_per_hour"] = 2392,
                        ["specs"] = new JsonObject { ["vcpus"] = 208, ["memory_gib"] = 1800, ["storage_gib"] = 24780, ["gpus"] = 8 },
                    },
                    ["regions_with_capacity_available"] = new JsonArray(),
                },
            },
        }));
        app.MapPost("/api/v1/instance-operations/launch", async (HttpContext context) =>
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            if (QuotaExceeded)
            {
                return Error(400, "global/quota-exceeded", "Quota exceeded for this instance type.");
            }
            if (RefuseIn.Contains(body["region_name"]!.GetValue<string>()))
            {
                return Error(400, "instance-operations/launch/insufficient-capacity", "Not enough capacity to fulfill launch request.");
            }
            Launched.Enqueue(body);
            var id = "0920582c7ff041399e34823a0be62549" + Launched.Count;
            Instances[id] = "booting";
            return Results.Json(new JsonObject { ["data"] = new JsonObject { ["instance_ids"] = new JsonArray(id) } });
        });
        app.MapGet("/api/v1/instances/{id}", (string id) => Instances.TryGetValue(id, out var status)
            ? Results.Json(new JsonObject { ["data"] = new JsonObject { ["id"] = id, ["status"] = status } })
            : Error(404, "global/object-does-not-exist", "Specified instance does not exist."));
        app.MapPost("/api/v1/instance-operations/terminate", async (HttpContext context) =>
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            var id = body["instance_ids"]![0]!.GetValue<string>();
            return Instances.TryRemove(id, out _)
                ? Results.Json(new JsonObject { ["data"] = new JsonObject { ["terminated_instances"] = new JsonArray(new JsonObject { ["id"] = id, ["status"] = "terminated" }) } })
                : Error(404, "global/object-does-not-exist", "Specified instance does not exist.");
        });
    }
}

/// <summary>
/// RunPod's GraphQL API as documented at https://docs.runpod.io/sdks/graphql/manage-pods (gpuTypes
/// with securePrice/communityPrice/…SpotPrice, podFindAndDeployOnDemand, podRentInterruptable, pod,
/// podTerminate). Refusals are GraphQL <c>errors</c> with HTTP 200, e.g. "There are no longer any
/// instances available with the requested specifications. Please refresh and try again."
/// </summary>
public sealed class FakeRunPod : FakeGpuCloud
{
    /// <summary>Bill pods at the secure price whatever cloud they asked for: the price trap.</summary>
    public bool BillSecurePrice { get; set; }

    public bool NoCapacity { get; set; }

    public bool LowBalance { get; set; }

    public ConcurrentDictionary<string, (string Status, string Type, bool Started)> Pods { get; } = new();

    public ConcurrentQueue<JsonObject> Deployed { get; } = new();

    public static async Task<FakeRunPod> CreateAsync()
    {
        var fake = new FakeRunPod();
        await fake.StartAsync();
        return fake;
    }

    protected override Task Unauthorized(HttpContext context)
    {
        context.Response.StatusCode = 401;
        return context.Response.WriteAsJsonAsync(new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["message"] = "Unauthorized" }) });
    }

    private static IResult Error(string message) => Results.Json(new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["message"] = message, ["path"] = new JsonArray("podFindAndDeployOnDemand") }), ["data"] = null });

    protected override void Map(WebApplication app)
    {
        app.MapPost("/graphql", async (HttpContext context) =>
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            var query = body["query"]!.GetValue<string>();
            var variables = body["variables"]?.AsObject() ?? [];
            if (query.Contains("gpuTypes", StringComparison.Ordinal))
            {
                return Results.Json(new JsonObject
                {
                    ["data"] = new JsonObject
                    {
                        ["gpuTypes"] = new JsonArray(
                            new JsonObject
                            {
                                ["id"] = "NVIDIA GeForce RTX 4090", ["displayName"] = "RTX 4090", ["memoryInGb"] = 24, ["secureCloud"] = true, ["communityCloud"] = true,
                                ["securePrice"] = 0.69, ["communityPrice"] = 0.34, ["communitySpotPrice"] = 0.2, ["secureSpotPrice"] = null,
                                ["lowestPrice"] = new JsonObject { ["stockStatus"] = "High" },
                            },
                            new JsonObject
                            {
                                ["id"] = "NVIDIA RTX A4000", ["displayName"] = "RTX A4000", ["memoryInGb"] = 16, ["secureCloud"] = true, ["communityCloud"] = true,
                                ["securePrice"] = 0.32, ["communityPrice"] = 0.17, ["lowestPrice"] = new JsonObject { ["stockStatus"] = "Medium" },
                            }),
                    },
                });
            }
            if (query.Contains("podFindAndDeployOnDemand", StringComparison.Ordinal) || query.Contains("podRentInterruptable", StringComparison.Ordinal))
            {
                if (NoCapacity)
                {
                    return Error("There are no longer any instances available with the requested specifications. Please refresh and try again.");
                }
                if (LowBalance)
                {
                    return Error("Your balance is too low to deploy this pod.");
                }
                var input = variables["input"]!.AsObject();
                Deployed.Enqueue(input);
                var spot = query.Contains("podRentInterruptable", StringComparison.Ordinal);
                var community = input["cloudType"]?.GetValue<string>() == "COMMUNITY";
                var cost = spot ? input["bidPerGpu"]!.GetValue<double>() : BillSecurePrice || !community ? 0.69 : 0.34;
                var id = "pod" + Deployed.Count;
                Pods[id] = ("RUNNING", spot ? "INTERRUPTABLE" : "RESERVED", false);
                var name = spot ? "podRentInterruptable" : "podFindAndDeployOnDemand";
                return Results.Json(new JsonObject { ["data"] = new JsonObject { [name] = new JsonObject { ["id"] = id, ["costPerHr"] = cost, ["desiredStatus"] = "RUNNING" } } });
            }
            if (query.Contains("podTerminate", StringComparison.Ordinal))
            {
                Pods.TryRemove(variables["id"]!.GetValue<string>(), out _);
                return Results.Json(new JsonObject { ["data"] = new JsonObject { ["podTerminate"] = null } });
            }
            if (query.Contains("pod(", StringComparison.Ordinal))
            {
                var id = variables["id"]!.GetValue<string>();
                return Results.Json(new JsonObject
                {
                    ["data"] = new JsonObject
                    {
                        ["pod"] = Pods.TryGetValue(id, out var pod)
                            ? new JsonObject { ["id"] = id, ["desiredStatus"] = pod.Status, ["podType"] = pod.Type, ["runtime"] = pod.Started ? new JsonObject { ["uptimeInSeconds"] = 42 } : null }
                            : null,
                    },
                });
            }
            return Results.Json(new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["message"] = "Cannot query field" }) }, statusCode: 400);
        });
    }
}
