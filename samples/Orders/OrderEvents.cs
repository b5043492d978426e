using System.Text.Json;
using Fundament.Client.Events;

namespace Orders;

/// <summary>An order was placed (schema version 2: with a currency).</summary>
public sealed record OrderPlaced(string OrderId, string Customer, decimal Total, string Currency);

/// <summary>How OrderPlaced was written before currencies (schema version 1); read through the upcaster.</summary>
public sealed record OrderPlacedV1(string OrderId, string Customer, decimal Total);

public sealed record OrderPaid(string OrderId, DateTimeOffset PaidAt);

/// <summary>An order as its stream says, folded from its events.</summary>
public sealed record Order(string Id, string Customer, decimal Total, string Currency, bool Paid, long Version)
{
    public static Order? Fold(string id, IEnumerable<(object? Event, long Version)> events) =>
        events.Aggregate((Order?)null, (order, e) => e.Event switch
        {
            OrderPlaced placed => new Order(id, placed.Customer, placed.Total, placed.Currency, false, e.Version),
            OrderPaid when order is not null => order with { Paid = true, Version = e.Version },
            _ => order is null ? null : order with { Version = e.Version },
        });

    public static string Stream(string id) => $"order-{id}";
}

/// <summary>
/// The projection's read model: orders, paid orders and revenue per currency. It keeps its state,
/// the last position it applied and the positions it failed on in a file, written before the event
/// is acknowledged. The subscription delivers in position order, so an event at or below the last
/// position was applied already (a redelivery after a crash between this write and the ack) unless
/// it is one that failed and was parked: those are applied when they are replayed.
/// </summary>
public sealed class OrderTotals
{
    private readonly Lock _lock = new();
    private readonly string _file;
    private State _state;

    public OrderTotals(IConfiguration configuration)
    {
        _file = configuration["Orders:ProjectionFile"] ?? Path.Combine(AppContext.BaseDirectory, "orders-totals.json");
        _state = File.Exists(_file) ? JsonSerializer.Deserialize<State>(File.ReadAllText(_file))! : new State(0, 0, 0, [], []);
    }

    public sealed record State(long Position, int Orders, int Paid, Dictionary<string, decimal> Revenue, List<long> Failed);

    public State Current
    {
        get
        {
            lock (_lock)
            {
                return _state with { Revenue = new Dictionary<string, decimal>(_state.Revenue), Failed = [.. _state.Failed] };
            }
        }
    }

    public void Apply(StoredEvent e, object? value)
    {
        lock (_lock)
        {
            if (e.Position <= _state.Position && !_state.Failed.Contains(e.Position))
            {
                return; // applied before: delivered again after a crash between the write and the ack
            }
            var revenue = new Dictionary<string, decimal>(_state.Revenue);
            var next = value switch
            {
                OrderPlaced placed => _state with { Orders = _state.Orders + 1, Revenue = Add(revenue, placed.Currency, placed.Total) },
                OrderPaid => _state with { Paid = _state.Paid + 1 },
                _ => _state,
            };
            Save(next with { Position = Math.Max(_state.Position, e.Position), Failed = _state.Failed.Where(p => p != e.Position).ToList() });
        }
    }

    /// <summary>Remembers that the event at <paramref name="position"/> was not applied, so that it is when it comes back.</summary>
    public void Failed(StoredEvent e)
    {
        lock (_lock)
        {
            if (!_state.Failed.Contains(e.Position))
            {
                Save(_state with { Failed = [.. _state.Failed, e.Position] });
            }
        }
    }

    private void Save(State state)
    {
        var temporary = _file + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(state));
        File.Move(temporary, _file, overwrite: true);
        _state = state;
    }

    private static Dictionary<string, decimal> Add(Dictionary<string, decimal> revenue, string currency, decimal amount)
    {
        revenue[currency] = revenue.GetValueOrDefault(currency) + amount;
        return revenue;
    }
}

/// <summary>
/// Feeds <see cref="OrderTotals"/> from the <c>orders-totals</c> subscription. An order in a
/// currency that is not three capital letters (another writer's bug) would corrupt the totals;
/// no retry can fix it, so it is parked at once for a person to look at (listed under
/// <c>/api/v1/subscriptions/orders-totals/parked</c>, and applied if it is corrected and replayed
/// through an upcast), and the projection goes on.
/// </summary>
public sealed class OrderTotalsProjection(OrderTotals totals) : IEventHandler
{
    public Task HandleAsync(StoredEvent e, CancellationToken cancellationToken)
    {
        try
        {
            var value = e.Deserialize();
            if (value is OrderPlaced { Currency: var currency } && !(currency.Length == 3 && currency.All(char.IsAsciiLetterUpper)))
            {
                throw new ParkEventException($"unknown currency '{currency}'");
            }
            totals.Apply(e, value);
            return Task.CompletedTask;
        }
        catch
        {
            totals.Failed(e);
            throw;
        }
    }
}
