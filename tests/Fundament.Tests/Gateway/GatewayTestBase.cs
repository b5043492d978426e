using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Gateway;

/// <summary>One Fundament process (in the test host) with its API and its gateway on two real loopback ports.</summary>
public sealed class GatewayNode : IAsyncDisposable
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private GatewayNode(ConfiguredFundamentFactory factory, HttpClient api, HttpClient gateway)
    {
        Factory = factory;
        Api = api;
        Gateway = gateway;
    }

    public ConfiguredFundamentFactory Factory { get; }

    /// <summary>The API, signed in as the bootstrap admin.</summary>
    public HttpClient Api { get; }

    public HttpClient Gateway { get; }

    public string AdminToken { get; private set; } = "";

    public int ApiPort { get; private init; }

    public int GatewayPort { get; private init; }

    public static async Task<GatewayNode> StartAsync(IEnumerable<KeyValuePair<string, string>> settings, Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null)
    {
        int apiPort = GatewayTestBase.FreePort(), gatewayPort = GatewayTestBase.FreePort();
        var factory = new ConfiguredFundamentFactory([new("Fundament:Gateway:Urls", $"http://127.0.0.1:{gatewayPort}"), .. settings]) { TestServices = services };
        factory.UseKestrel(options =>
        {
            options.Listen(IPAddress.Loopback, apiPort);
            options.Listen(IPAddress.Loopback, gatewayPort);
        });
        factory.StartServer();
        var node = new GatewayNode(factory, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") }, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gatewayPort}") })
        {
            ApiPort = apiPort,
            GatewayPort = gatewayPort,
        };
        node.AdminToken = await node.LoginAsync("admin", FundamentFactory.AdminPassword);
        node.Api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", node.AdminToken);
        return node;
    }

    public async Task<string> LoginAsync(string username, string password)
    {
        using var anonymous = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ApiPort}") };
        var body = await (await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username, password }, _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        var token = body!["access_token"]!.GetValue<string>();
        Credentials.Add(token);
        Credentials.Add(body["refresh_token"]?.GetValue<string>() ?? "");
        return token;
    }

    /// <summary>Creates an API key of the admin and returns it.</summary>
    public async Task<string> ApiKeyAsync()
    {
        var created = await (await Api.PostAsJsonAsync("/api/v1/api-keys", new { name = "gateway-" + Guid.NewGuid().ToString("N")[..8] }, _ct)).Content.ReadFromJsonAsync<JsonNode>(_ct);
        var key = created!["key"]!.GetValue<string>();
        Credentials.Add(key);
        return key;
    }

    /// <summary>Registers an instance on 127.0.0.1:<paramref name="port"/> and returns its id.</summary>
    public async Task<string> RegisterAsync(string service, object[] routes, int port, object? check = null, string? version = null, string? instanceId = null)
    {
        var response = await Api.PostAsJsonAsync("/api/v1/registry/instances", new { service, instanceId, address = "127.0.0.1", port, version, routes, check }, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_ct));
        return (await response.Content.ReadFromJsonAsync<JsonNode>(_ct))!["instanceId"]!.GetValue<string>();
    }

    /// <summary>Grants <paramref name="service"/> the route claim <paramref name="pathPrefix"/>.</summary>
    public async Task ClaimAsync(string service, string pathPrefix)
    {
        var response = await Api.PostAsJsonAsync("/api/v1/registry/route-claims", new { service, pathPrefix }, _ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_ct));
    }

    /// <summary>Credentials used against this node; none may appear in its gateway logs.</summary>
    public List<string> Credentials { get; } = [];

    public async ValueTask DisposeAsync()
    {
        // Every gateway test ends by proving its access and gateway logs hold no credential.
        var log = string.Join("\n", Factory.GatewayLog);
        foreach (var credential in Credentials.Append(AdminToken).Where(c => c.Length > 0))
        {
            Assert.DoesNotContain(credential, log, StringComparison.Ordinal);
            if (credential.Split('.') is [_, _, var signature] && signature.Length > 0)
            {
                Assert.DoesNotContain(signature, log, StringComparison.Ordinal);
            }
        }
        Assert.DoesNotContain("Bearer ", log, StringComparison.Ordinal);
        Assert.DoesNotContain("ApiKey ", log, StringComparison.Ordinal);
        Api.Dispose();
        Gateway.Dispose();
        await Factory.DisposeAsync();
    }
}

/// <summary>A <see cref="GatewayNode"/> and an echo upstream per test.</summary>
public abstract class GatewayTestBase : IAsyncLifetime
{
    protected readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private GatewayNode _node = null!;
    protected ConfiguredFundamentFactory _factory = null!;
    protected HttpClient _api = null!;
    protected HttpClient _gateway = null!;
    protected EchoService _upstream = null!;
    protected string _adminToken = "";

    /// <summary>Settings besides the gateway URL.</summary>
    protected virtual IEnumerable<KeyValuePair<string, string>> Settings() => [];

    /// <summary>Services the test replaces (e.g. the egress resolver).</summary>
    protected virtual void TestServices(Microsoft.Extensions.DependencyInjection.IServiceCollection services)
    {
    }

    public virtual async ValueTask InitializeAsync()
    {
        _node = await GatewayNode.StartAsync(Settings(), TestServices);
        (_factory, _api, _gateway, _adminToken) = (_node.Factory, _node.Api, _node.Gateway, _node.AdminToken);
        _upstream = await EchoService.StartAsync();
    }

    public virtual async ValueTask DisposeAsync()
    {
        await _upstream.DisposeAsync();
        await _node.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    protected Task<string> LoginAsync(string username, string password) => _node.LoginAsync(username, password);

    protected Task<string> ApiKeyAsync() => _node.ApiKeyAsync();

    protected Task ClaimAsync(string service, string pathPrefix) => _node.ClaimAsync(service, pathPrefix);

    protected GatewayNode Node => _node;

    /// <summary>Registers an instance (the echo upstream unless a port is given) and returns its id.</summary>
    protected Task<string> RegisterAsync(string service, object[] routes, object? check = null, int? port = null, string? version = null, string? instanceId = null) =>
        _node.RegisterAsync(service, routes, port ?? _upstream.Port, check, version, instanceId);

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

    internal static int FreePort()
    {
        return Fundament.Tests.Infrastructure.TestPorts.Next();
    }
}
