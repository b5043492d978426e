namespace Fundament.Delivery;

public static class DeliveryPermissions
{
    /// <summary>See and retry outbound deliveries.</summary>
    public const string Manage = "deliveries.manage";

    /// <summary>Subscribe webhooks to one's own events.</summary>
    public const string WebhooksOwn = "webhooks.own";
}
