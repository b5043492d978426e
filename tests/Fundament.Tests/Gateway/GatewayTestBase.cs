using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Gateway;

/// <summary>A Fundament server with its API and its gateway on two real loopback ports, and an echo upstream.</summary>
public abstract class GatewayTestBase : IAsyncLifetime
{
    protected readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    protected readonly int _apiPort = FreePort();
    protected readonly int _gatewayPort = FreePort();
    protected ConfiguredFundamentFactory _factory = null!;
    protected HttpClient _api = null!;
    protected HttpClient _gateway = null!;
    protected EchoService _upstream = null!;
    protected string _adminToken = "";

    /// <summary>Settings besides the gateway URL.</summary>
    protected virtual IEnumerable<KeyValuePair<string, string>> Settings() => [];

    public virtual async ValueTask InitializeAsync()
    {
        _factory = new ConfiguredFundamentFactory([new("Fundament:Gateway:Urls", $"http://127.0.0.1:{_gatewayPort}"), .. Settings()]);
        _factory.UseKestrel(options =>
        {
            options.Listen(IPAddress.Loopback, _apiPort);
            options.Listen(IPAddress.Loopback, _gatewayPort);
        });
        _factory.StartServer();
        _api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_apiPort}") };
        _gateway = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_gatewayPort}") };
        _upstream = await EchoService.StartAsync();
        _adminToken = await LoginAsync("admin", FundamentFactory.AdminPassword);
        _api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _adminToken);
    }

    public virtual async ValueTask DisposeAsync()
    {
        _api.Dispose();
        _gateway.Dispose();
        await _upstream.DisposeAsync();
        await _factory.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    protected async Task<string> LoginAsync(string username, string password)
    {
        using var anonymous = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_apiPort}") };
        var body = await (await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username, password }, _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        return body!["access_token"]!.GetValue<string>();
    }

    /// <summary>Registers an instance (the echo upstream unless a port is given) and returns its id.</summary>
    protected async Task<string> RegisterAsync(string service, object[] routes, object? check = null, int? port = null, string? version = null, string? instanceId = null)
    {
        var response = await _api.PostAsJsonAsync("/api/v1/registry/instances", new { service, instanceId, address = "127.0.0.1", port = port ?? _upstream.Port, version, routes, check }, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_ct));
        return (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["instanceId"]!.GetValue<string>();
    }

    protected async Task<HttpResponseMessage> EventuallyAsync(Func<Task<HttpResponseMessage>> send, HttpStatusCode expected)
    {
        HttpResponseMessage response = null!;
        for (var i = 0; i < 100; i++)
        {
            response = await send();
            if (response.StatusCode == expected)
            {
                return response;
            }
            await Task.Delay(50, _ct);
        }
        Assert.Fail($"expected {(int)expected}, still {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(_ct)}");
        return response;
    }

    protected static HttpRequestMessage Get(string path, string? bearer = null, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        return request;
    }

    protected static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
