namespace Orders;

/// <summary>Settings the Orders service reads from Fundament (config key <c>Orders</c>), live.</summary>
public sealed class OrdersOptions
{
    public int MaxItems { get; set; } = 10;

    public string Greeting { get; set; } = "hello";
}
