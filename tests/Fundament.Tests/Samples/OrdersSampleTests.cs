using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Samples;

/// <summary>
/// The real thing: the fundament server and the Orders sample as two processes. The sample
/// registers, turns passing, reads a secret and a config value, sees a config change live, and
/// disappears on SIGTERM.
/// </summary>
public sealed class OrdersSampleTests : IAsyncDisposable
{
    private const string AdminPassword = "Sample-Root-Password-1";
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));
    private readonly List<Process> _processes = [];

    private static string ServerDll => Path.Combine(AppContext.BaseDirectory, "fundament.dll");

    private static string OrdersDll
    {
        get
        {
            var testBin = AppContext.BaseDirectory;
            var marker = Path.Combine("tests", "Fundament.Tests", "bin");
            var index = testBin.LastIndexOf(marker, StringComparison.Ordinal);
            return Path.Combine(testBin[..index], "samples", "Orders", "bin", testBin[(index + marker.Length)..].Trim(Path.DirectorySeparatorChar), "Orders.dll");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
            process.Dispose();
        }
        if (Directory.Exists(_dataDir))
        {
            Directory.Delete(_dataDir, true);
        }
    }

    private Process Start(string dll, Dictionary<string, string> environment, params string[] args)
    {
        var process = ChildProcess.StartDotnet(dll, environment, args);
        _processes.Add(process);
        return process;
    }

    private async Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, string what)
    {
        for (var i = 0; i < 300; i++)
        {
            try
            {
                if (await probe() is { } value)
                {
                    return value;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100, _ct);
        }
        throw new TimeoutException($"gave up waiting for {what}");
    }

    [Theory]
    [InlineData("http-check")]
    [InlineData("ttl")]
    public async Task Sample_Registers_TurnsPassing_ReadsSecretAndConfig_FollowsAChange_AndLeavesOnSigterm(string mode)
    {
        var (api, adminToken, apiPort, gatewayPort) = await StartServerAsync();
        using var _api = api;
        var (clientId, clientSecret) = await CreateOrdersClientAsync(api);
        (await api.PutAsJsonAsync("/api/v1/config/entries", new { service = "orders", environment = "*", key = "Orders", value = new { MaxItems = 25, Greeting = "hi" } }, _ct)).EnsureSuccessStatusCode();
        (await api.PutAsJsonAsync("/api/v1/secrets/orders/db-password", new { value = "s3cret-db-pass" }, _ct)).EnsureSuccessStatusCode();
        (await api.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"client:{clientId}", pathPrefix = "orders", capabilities = new[] { "read" } }, _ct)).EnsureSuccessStatusCode();

        var ordersPort = FreePort();
        var ordersEnvironment = OrdersEnvironment(apiPort, clientId, clientSecret);
        if (mode == "ttl")
        {
            // Heartbeats every second instead of being checked.
            ordersEnvironment["Fundament__Client__Ttl"] = "3s";
        }
        var orders = Start(OrdersDll, ordersEnvironment, "--urls", $"http://127.0.0.1:{ordersPort}");
        using var sample = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ordersPort}") };

        // Registers, and Fundament's own active check turns it passing.
        var instance = await EventuallyAsync(async () =>
        {
            var list = await api.GetFromJsonAsync<JsonArray>("/api/v1/registry/services/orders/instances?healthy=true", _ct);
            return list is { Count: 1 } ? list[0] : null;
        }, "the sample to register and pass its check");
        Assert.Equal(ordersPort, instance["port"]!.GetValue<int>());

        var settings = await sample.GetFromJsonAsync<JsonNode>("/orders/settings", _ct);
        Assert.Equal(25, settings!["maxItems"]!.GetValue<int>());
        var database = await sample.GetFromJsonAsync<JsonNode>("/orders/database", _ct);
        Assert.True(database!["configured"]!.GetValue<bool>());
        Assert.Equal("s3cret-db-pass".Length, database["length"]!.GetValue<int>());

        // Through the gateway (the sample registers /orders/{**rest} from its appsettings), the
        // service sees the caller in a token minted for it alone, which AddFundamentAuthentication
        // accepts; the caller's own Fundament token is refused by the service.
        using var gateway = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gatewayPort}") };
        gateway.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminToken);
        var me = await EventuallyAsync(async () =>
        {
            using var response = await gateway.GetAsync("/orders/me", _ct);
            return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonNode>(_ct) : null;
        }, "the sample's route through the gateway");
        Assert.Equal("admin", me["name"]!.GetValue<string>());
        Assert.Equal("service:orders", me["audience"]!.GetValue<string>());
        Assert.Contains("fundament-gateway", me["actor"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("admin", me["roles"]!.AsArray().Select(r => r!.GetValue<string>()));
        using (var direct = new HttpRequestMessage(HttpMethod.Get, "/orders/me"))
        {
            direct.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminToken);
            Assert.Equal(HttpStatusCode.Unauthorized, (await sample.SendAsync(direct, _ct)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await sample.GetAsync("/orders/me", _ct)).StatusCode);

        // A change in Fundament reaches IOptionsMonitor in the running service.
        (await api.PutAsJsonAsync("/api/v1/config/entries", new { service = "orders", environment = "*", key = "Orders", value = new { MaxItems = 40, Greeting = "hi" } }, _ct)).EnsureSuccessStatusCode();
        await EventuallyAsync(async () => (await sample.GetFromJsonAsync<JsonNode>("/orders/settings", _ct))!["maxItems"]!.GetValue<int>() == 40 ? "changed" : null, "the config change to arrive");

        // Discovery: http://billing/ reaches a passing billing instance found in the registry.
        await using var billing = await Registry.CheckedService.StartAsync();
        (await api.PostAsJsonAsync("/api/v1/registry/instances", new
        {
            service = "billing",
            address = "127.0.0.1",
            port = billing.Port,
            check = new { http = "/health/ready", interval = "1s", timeout = "1s" },
        }, _ct)).EnsureSuccessStatusCode();
        await EventuallyAsync(async () => (await api.GetFromJsonAsync<JsonArray>("/api/v1/registry/services/billing/instances?healthy=true", _ct))!.Count == 1 ? "passing" : null, "billing to pass");
        var viaDiscovery = await EventuallyAsync(async () =>
        {
            var answer = await sample.GetFromJsonAsync<JsonNode>("/orders/billing", _ct);
            return answer!["reachable"]!.GetValue<bool>() ? answer : null;
        }, "the sample to reach billing through discovery");
        Assert.Equal(200, viaDiscovery["status"]!.GetValue<int>());
        Assert.True(billing.Checks > 0);

        if (mode == "ttl")
        {
            // Past the 3s TTL several times over: the heartbeats keep it passing.
            await Task.Delay(TimeSpan.FromSeconds(7), _ct);
            var still = await api.GetFromJsonAsync<JsonArray>("/api/v1/registry/services/orders/instances?healthy=true", _ct);
            Assert.Single(still!);
        }

        // SIGTERM: a graceful stop that deregisters.
        using (var kill = Process.Start("kill", ["-TERM", orders.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(_ct);
        }
        await orders.WaitForExitAsync(_ct).WaitAsync(TimeSpan.FromSeconds(30), _ct);
        var remaining = await api.GetFromJsonAsync<JsonArray>("/api/v1/registry/services/orders/instances", _ct);
        Assert.Empty(remaining!);
    }

    /// <summary>Starts the server and signs in as admin: the admin API client, the token, the API and gateway ports.</summary>
    private async Task<(HttpClient Api, string AdminToken, int ApiPort, int GatewayPort)> StartServerAsync()
    {
        Assert.True(File.Exists(OrdersDll), $"the sample was not built at {OrdersDll}");
        var apiPort = FreePort();
        var gatewayPort = FreePort();
        Start(ServerDll, new()
        {
            ["Fundament__DataDir"] = _dataDir,
            ["Fundament__Identity__BootstrapAdminPassword"] = AdminPassword,
            ["Fundament__Identity__PasswordHashIterations"] = "10000",
            ["Fundament__Gateway__Urls"] = $"http://127.0.0.1:{gatewayPort}",
        }, "--urls", $"http://127.0.0.1:{apiPort}");
        var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") };
        await EventuallyAsync(async () => (await api.GetAsync("/health/ready", _ct)).IsSuccessStatusCode ? "ready" : null, "fundament to be ready");
        var login = await (await api.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = AdminPassword }, _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        var adminToken = login!["access_token"]!.GetValue<string>();
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminToken);
        return (api, adminToken, apiPort, gatewayPort);
    }

    private async Task<(string ClientId, string ClientSecret)> CreateOrdersClientAsync(HttpClient api)
    {
        var client = await (await api.PostAsJsonAsync("/api/v1/clients", new { name = "orders", roles = new[] { "service" } }, _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        return (client!["client_id"]!.GetValue<string>(), client["client_secret"]!.GetValue<string>());
    }

    private Dictionary<string, string> OrdersEnvironment(int apiPort, string clientId, string clientSecret) => new()
    {
        ["Fundament__Client__Url"] = $"http://127.0.0.1:{apiPort}",
        ["Fundament__Client__ClientId"] = clientId,
        ["Fundament__Client__ClientSecret"] = clientSecret,
        ["Fundament__Client__Address"] = "127.0.0.1",
        ["Fundament__Client__CheckInterval"] = "1s",
        ["Fundament__Client__CheckTimeout"] = "1s",
        ["Orders__ProjectionFile"] = Path.Combine(_dataDir, "orders-totals.json"),
    };

    [Fact]
    public async Task Sample_EventSourcesOrders_UpcastsOldEvents_AndItsProjectionCountsEachOnce_AcrossAKill()
    {
        var (api, adminToken, apiPort, gatewayPort) = await StartServerAsync();
        using var _api = api;
        var (clientId, clientSecret) = await CreateOrdersClientAsync(api);
        (await api.PostAsJsonAsync("/api/v1/stream-grants", new { principal = $"client:{clientId}", streamPrefix = "order-", capabilities = new[] { "read", "append" } }, _ct)).EnsureSuccessStatusCode();
        (await api.PostAsJsonAsync("/api/v1/topic-grants", new { principal = $"client:{clientId}", topicPrefix = "orders.", capabilities = new[] { "publish", "consume" } }, _ct)).EnsureSuccessStatusCode();
        // An order written before currencies existed: OrderPlaced at schema version 1.
        (await api.PostAsJsonAsync("/api/v1/streams/order-legacy/events", new
        {
            expectedVersion = "no_stream",
            events = new[] { new { id = "legacy-1", type = "OrderPlaced", schemaVersion = 1, data = new { orderId = "legacy", customer = "Ada", total = 10m } } },
        }, _ct)).EnsureSuccessStatusCode();

        Process StartOrders(int port) => Start(OrdersDll, OrdersEnvironment(apiPort, clientId, clientSecret), "--urls", $"http://127.0.0.1:{port}");
        var orders = StartOrders(FreePort());
        using var gateway = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gatewayPort}") };
        gateway.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminToken);
        var legacy = await EventuallyAsync(async () =>
        {
            using var response = await gateway.GetAsync("/orders/legacy", _ct);
            return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonNode>(_ct) : null;
        }, "the sample's route through the gateway");
        Assert.Equal("EUR", legacy["currency"]!.GetValue<string>()); // the typed upcaster filled it in
        Assert.Equal(10m, legacy["total"]!.GetValue<decimal>());

        async Task<string> PlaceAsync(string customer, decimal total, string currency)
        {
            var placed = await gateway.PostAsJsonAsync("/orders/new", new { customer, total, currency }, _ct);
            Assert.Equal(HttpStatusCode.Created, placed.StatusCode);
            return (await placed.Content.ReadFromJsonAsync<JsonNode>(_ct))!["id"]!.GetValue<string>();
        }
        var first = await PlaceAsync("Grace", 25m, "USD");
        await PlaceAsync("Linus", 5m, "EUR");
        Assert.Equal(HttpStatusCode.OK, (await gateway.PostAsync($"/orders/{first}/pay", null, _ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await gateway.PostAsync($"/orders/{first}/pay", null, _ct)).StatusCode);
        var paid = await gateway.GetFromJsonAsync<JsonNode>($"/orders/{first}", _ct);
        Assert.True(paid!["paid"]!.GetValue<bool>());
        Assert.Equal(1, paid["version"]!.GetValue<long>());

        async Task<JsonNode> TotalsAsync(int ordersCount, int paidCount) => await EventuallyAsync(async () =>
        {
            using var response = await gateway.GetAsync("/orders/totals", _ct);
            var totals = response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonNode>(_ct) : null;
            return totals?["orders"]!.GetValue<int>() == ordersCount && totals["paid"]!.GetValue<int>() == paidCount ? totals : null;
        }, $"the projection to count {ordersCount} orders, {paidCount} paid");
        var totals = await TotalsAsync(3, 1);
        Assert.Equal(15m, totals["revenue"]!["EUR"]!.GetValue<decimal>());
        Assert.Equal(25m, totals["revenue"]!["USD"]!.GetValue<decimal>());

        // The payment went through the outbox subscription onto the bus, and its consumer sent one receipt.
        var receipts = await EventuallyAsync(async () =>
        {
            using var response = await gateway.GetAsync("/orders/receipts", _ct);
            var sent = response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonNode>(_ct) : null;
            return sent?[first] is not null ? sent : null;
        }, "a receipt for the paid order");
        Assert.Equal(1, receipts[first]!.GetValue<int>());
        Assert.Single(receipts.AsObject());

        // Killed outright and started again: the projection neither loses nor double-counts.
        orders.Kill(entireProcessTree: true);
        await orders.WaitForExitAsync(_ct);
        var port = FreePort();
        StartOrders(port);
        // Through the gateway only once the registry sends traffic to the new process alone.
        await EventuallyAsync(async () =>
        {
            var list = await api.GetFromJsonAsync<JsonArray>("/api/v1/registry/services/orders/instances?healthy=true", _ct);
            return list is { Count: 1 } && list[0]!["port"]!.GetValue<int>() == port ? "switched" : null;
        }, "the restarted sample to be the one passing instance");
        await TotalsAsync(3, 1);
        await PlaceAsync("Barbara", 1m, "EUR");
        totals = await TotalsAsync(4, 1);
        Assert.Equal(16m, totals["revenue"]!["EUR"]!.GetValue<decimal>());
        Assert.Equal(0, (await api.GetFromJsonAsync<JsonNode>("/api/v1/subscriptions/orders-totals", _ct))!["parked"]!.GetValue<long>());

        // Another writer's bad event: the handler parks it at once, and the projection goes on past it.
        (await api.PostAsJsonAsync("/api/v1/streams/order-bad/events", new
        {
            expectedVersion = "no_stream",
            events = new[] { new { id = "bad-1", type = "OrderPlaced", schemaVersion = 2, data = new { orderId = "bad", customer = "Eve", total = 1000m, currency = "bitcoin" } } },
        }, _ct)).EnsureSuccessStatusCode();
        await PlaceAsync("Margaret", 2m, "EUR");
        totals = await TotalsAsync(5, 1);
        Assert.Equal(18m, totals["revenue"]!["EUR"]!.GetValue<decimal>());
        var parked = (await api.GetFromJsonAsync<JsonNode>("/api/v1/subscriptions/orders-totals/parked", _ct))!["events"]!.AsArray();
        var bad = Assert.Single(parked);
        Assert.Equal("bad-1", bad!["event"]!["id"]!.GetValue<string>());
        Assert.Equal(1, bad["attempts"]!.GetValue<int>());
        Assert.Contains("ParkEventException: unknown currency 'bitcoin'", bad["reason"]!.GetValue<string>());
    }

    private static int FreePort()
    {
        return Fundament.Tests.Infrastructure.TestPorts.Next();
    }
}
