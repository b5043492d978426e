using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Fundament.Client;
using Microsoft.Extensions.Options;
using Orders;

var builder = WebApplication.CreateBuilder(args);

// Registers with Fundament, follows its configuration live, and brings ISecretStore and discovery.
builder.AddFundamentClient();
// Accepts the tokens the gateway mints for "orders" (audience service:orders), and nothing else.
builder.AddFundamentAuthentication();
builder.Services.Configure<OrdersOptions>(builder.Configuration.GetSection("Orders"));

// Calls to http://billing/ go to a passing instance of the billing service, found in the registry.
builder.Services.AddHttpClient("billing", client => client.BaseAddress = new Uri("http://billing")).AddServiceDiscovery();

var app = builder.Build();

app.UseAuthentication();
app.UseAuthorization();
app.MapFundamentHealth();

// Who called through the gateway: the exchanged token names the user, and the gateway as its actor.
app.MapGet("/orders/me", (ClaimsPrincipal user) => new
{
    subject = user.FindFirstValue("sub"),
    name = user.Identity?.Name,
    roles = user.FindAll("roles").Select(r => r.Value).ToArray(),
    audience = user.FindFirstValue("aud"),
    actor = user.FindFirstValue("act"),
}).RequireAuthorization();

app.MapGet("/orders/settings", (IOptionsMonitor<OrdersOptions> options) => options.CurrentValue);

// Proves the database password arrived without ever showing it.
app.MapGet("/orders/database", async (ISecretStore secrets, CancellationToken cancellationToken) =>
{
    var password = await secrets.GetAsync("orders/db-password", cancellationToken);
    return new
    {
        configured = password is not null,
        length = password?.Length,
        fingerprint = password is null ? null : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(password)))[..12],
    };
});

app.MapGet("/orders/billing", async (IHttpClientFactory clients, CancellationToken cancellationToken) =>
{
    using var billing = clients.CreateClient("billing");
    try
    {
        using var response = await billing.GetAsync("/health/ready", cancellationToken);
        return Results.Ok(new { reachable = true, status = (int)response.StatusCode });
    }
    catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException)
    {
        return Results.Ok(new { reachable = false, status = 0 });
    }
});

app.Run();
