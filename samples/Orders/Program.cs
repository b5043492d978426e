using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Fundament.Client;
using Fundament.Client.Events;
using Fundament.Client.Messaging;
using Microsoft.Extensions.Options;
using Orders;

var builder = WebApplication.CreateBuilder(args);

// Registers with Fundament, follows its configuration live, and brings ISecretStore and discovery.
builder.AddFundamentClient();
// Accepts the tokens the gateway mints for "orders" (audience service:orders), and nothing else.
builder.AddFundamentAuthentication();
builder.Services.Configure<OrdersOptions>(builder.Configuration.GetSection("Orders"));

// Orders are event-sourced in Fundament's event store (streams order-<id>; the service's client
// needs a stream grant on "order-"). OrderPlaced moved to schema version 2 when currencies came;
// version 1 events are read through the typed upcaster.
builder.AddFundamentEventStore(events =>
{
    events.Map<OrderPlaced>("OrderPlaced", schemaVersion: 2)
        .Upcast<OrderPlacedV1>(1, v1 => new OrderPlaced(v1.OrderId, v1.Customer, v1.Total, "EUR"));
    events.Map<OrderPaid>("OrderPaid");
});
// A projection: totals over every order, fed by a durable catch-up subscription.
builder.Services.AddSingleton<OrderTotals>();
builder.AddFundamentSubscription<OrderTotalsProjection>(new SubscriptionSettings("orders-totals", StreamPrefix: "order-"),
    consumer => consumer.Wait = TimeSpan.FromSeconds(5));

// Paid orders are announced on the bus (topic orders.paid; the client needs a topic grant on
// "orders." to publish and consume): OrderPaid events are published by an outbox subscription, and
// a consumer group sends one receipt per paid order.
builder.AddFundamentBus();
builder.AddFundamentSubscription<OrderPaidPublisher>(new SubscriptionSettings("orders-paid-outbox", StreamPrefix: "order-", Type: "OrderPaid"),
    consumer => consumer.Wait = TimeSpan.FromSeconds(5));
builder.Services.AddSingleton<Receipts>();
builder.AddFundamentConsumer<ReceiptHandler>(new ConsumerGroupSettings("orders.paid", "receipts"), consumer => consumer.Wait = TimeSpan.FromSeconds(5));

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

app.MapPost("/orders/new", async (NewOrder request, IEventStore store, CancellationToken cancellationToken) =>
{
    if (string.IsNullOrWhiteSpace(request.Customer) || request.Total <= 0)
    {
        return Results.ValidationProblem(new Dictionary<string, string[]> { ["order"] = ["customer and a positive total are required."] });
    }
    var id = Guid.CreateVersion7().ToString("N");
    var placed = new OrderPlaced(id, request.Customer, request.Total, request.Currency ?? "EUR");
    var result = await store.AppendAsync(Order.Stream(id), ExpectedVersion.NoStream, [new EventData(placed)], cancellationToken);
    return Results.Created($"/orders/{id}", new { id, version = result.ToVersion });
}).RequireAuthorization();

app.MapPost("/orders/{id}/pay", async (string id, IEventStore store, TimeProvider time, CancellationToken cancellationToken) =>
{
    var order = await LoadAsync(store, id, cancellationToken);
    if (order is null)
    {
        return Results.NotFound();
    }
    if (order.Paid)
    {
        return Results.Conflict(new { detail = "already paid" });
    }
    try
    {
        // Exactly the version read: a concurrent payment makes this one fail instead of paying twice.
        await store.AppendAsync(Order.Stream(id), ExpectedVersion.Exactly(order.Version), [new EventData(new OrderPaid(id, time.GetUtcNow()))], cancellationToken);
    }
    catch (WrongExpectedVersionException)
    {
        return Results.Conflict(new { detail = "the order changed meanwhile; read it again" });
    }
    return Results.Ok(await LoadAsync(store, id, cancellationToken));
}).RequireAuthorization();

app.MapGet("/orders/{id}", async (string id, IEventStore store, CancellationToken cancellationToken) =>
    await LoadAsync(store, id, cancellationToken) is { } order ? Results.Ok(order) : Results.NotFound()).RequireAuthorization();

app.MapGet("/orders/totals", (OrderTotals totals) => totals.Current).RequireAuthorization();

app.MapGet("/orders/receipts", (Receipts receipts) => receipts.Sent).RequireAuthorization();

app.Run();

static async Task<Order?> LoadAsync(IEventStore store, string id, CancellationToken cancellationToken)
{
    var events = new List<(object?, long)>();
    await foreach (var e in store.ReadAsync(Order.Stream(id), cancellationToken: cancellationToken))
    {
        events.Add((e.Deserialize(), e.Version));
    }
    return Order.Fold(id, events);
}

internal sealed record NewOrder(string? Customer, decimal Total, string? Currency);
