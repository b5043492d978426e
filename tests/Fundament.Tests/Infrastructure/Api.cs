using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Fundament.Tests.Infrastructure;

/// <summary>Small helpers for talking to the API the way a client would.</summary>
public static class Api
{
    private static int _counter;

    public static string UniqueName(string prefix = "user") => $"{prefix}{Interlocked.Increment(ref _counter)}x{Guid.NewGuid().ToString("N")[..6]}";

    public const string UserPassword = "Plenty-Long-Password-77";

    public static async Task<JsonNode> LoginAsync(this FundamentFactory factory, string username, string password)
    {
        using var client = factory.CreateClient();
        var response = await client.PostAsJsonAsync("/api/v1/auth/login", new { username, password }, TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"login of {username} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<JsonNode>(TestContext.Current.CancellationToken))!;
    }

    public static async Task<HttpClient> AdminAsync(this FundamentFactory factory)
    {
        var tokens = await factory.LoginAsync("admin", FundamentFactory.AdminPassword);
        return factory.Bearer(tokens["access_token"]!.GetValue<string>());
    }

    public static HttpClient Bearer(this FundamentFactory factory, string token)
    {
        var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public static HttpClient WithApiKey(this FundamentFactory factory, string key)
    {
        var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", key);
        return client;
    }

    /// <summary>Creates a user through the API as admin; returns its id and username.</summary>
    public static async Task<(string Id, string Username)> CreateUserAsync(this FundamentFactory factory, string[]? roles = null, string? email = null, string? username = null)
    {
        using var admin = await factory.AdminAsync();
        username ??= UniqueName();
        var response = await admin.PostAsJsonAsync("/api/v1/users", new { username, password = UserPassword, email, roles = roles ?? ["user"] }, TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        var body = await response.Content.ReadFromJsonAsync<JsonNode>(TestContext.Current.CancellationToken);
        return (body!["id"]!.GetValue<string>(), username);
    }

    /// <summary>A client logged in as a new user with <paramref name="roles"/>.</summary>
    public static async Task<(HttpClient Client, string Id, JsonNode Tokens)> UserClientAsync(this FundamentFactory factory, params string[] roles)
    {
        var (id, username) = await factory.CreateUserAsync(roles.Length == 0 ? ["user"] : roles);
        var tokens = await factory.LoginAsync(username, UserPassword);
        return (factory.Bearer(tokens["access_token"]!.GetValue<string>()), id, tokens);
    }

    /// <summary>A new service client named <paramref name="name"/>, logged in with client credentials.</summary>
    public static async Task<(HttpClient Client, string ClientId)> ServiceClientAsync(this FundamentFactory factory, string name, params string[] roles)
    {
        var ct = TestContext.Current.CancellationToken;
        using var admin = await factory.AdminAsync();
        // The built-in role a service's client normally gets, unless the test says otherwise.
        var created = await (await admin.PostAsJsonAsync("/api/v1/clients", new { name, roles = roles.Length == 0 ? ["service"] : roles }, ct)).JsonAsync();
        using var anonymous = factory.CreateClient();
        var token = await (await anonymous.PostAsync("/oauth2/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = created["client_id"]!.GetValue<string>(),
            ["client_secret"] = created["client_secret"]!.GetValue<string>(),
        }), ct)).JsonAsync();
        return (factory.Bearer(token["access_token"]!.GetValue<string>()), created["client_id"]!.GetValue<string>());
    }

    public static async Task<JsonNode> JsonAsync(this HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonNode>(TestContext.Current.CancellationToken))!;

    public static async Task AssertProblemAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonNode.Parse(body)!;
        Assert.Equal((int)status, json["status"]!.GetValue<int>());
    }
}

public static class DomainEventRelayTestExtensions
{
    /// <summary>One pass of the relay that hands the platform's domain events (on the bus) to the webhooks; the test hosts do not run it in the background.</summary>
    public static Task<int> RelayEventsAsync(this IServiceProvider services, CancellationToken cancellationToken) =>
        Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Fundament.Messaging.DomainEventRelay>(services).PassAsync(cancellationToken);
}
