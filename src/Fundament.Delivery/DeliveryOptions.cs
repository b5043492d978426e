namespace Fundament.Delivery;

/// <summary>Section <c>Fundament:Delivery</c>.</summary>
public sealed class DeliveryOptions
{
    public const string SectionName = "Fundament:Delivery";

    /// <summary>Whether this process sends deliveries (control role). Default true; replicas share the work through leases.</summary>
    public bool DispatcherEnabled { get; set; } = true;

    /// <summary>How often the dispatcher looks for due deliveries. Default 1s.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Attempts before a delivery is given up (dead). Default 10.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>Wait before the first retry; doubles each attempt, with ±20% jitter. Default 5s.</summary>
    public TimeSpan RetryBase { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest wait between attempts. Default 1h.</summary>
    public TimeSpan RetryMax { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Time allowed for one HTTP attempt. Default 10s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Deliveries sent at once by one process. Default 16.</summary>
    public int MaxConcurrent { get; set; } = 16;
}

internal sealed class DeliveryOptionsValidator : SettingsValidator<DeliveryOptions>
{
    protected override string Section => DeliveryOptions.SectionName;

    protected override void Check(DeliveryOptions o, SettingsProblems problems)
    {
        problems.Between(o.PollInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1));
        problems.Between(o.MaxAttempts, 1, 100);
        problems.Positive(o.RetryBase);
        problems.Require(o.RetryMax >= o.RetryBase, o.RetryMax, "must not be below RetryBase.");
        problems.Between(o.Timeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        problems.Between(o.MaxConcurrent, 1, 256);
    }
}
