using Fundament.Core.Keys;

namespace Fundament.Alerts;

/// <summary>
/// Module <c>alerts</c>: rules over conditions other modules contribute
/// (<see cref="IAlertConditionSource"/>), the alert lifecycle, and notification channels, which
/// it hands to the delivery module. Control nodes may evaluate (one at a time, by lease).
/// </summary>
public sealed class AlertsModule : FundamentModule
{
    public override string Name => "alerts";

    public override IReadOnlyList<string> Requires { get; } = ["delivery"];

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(AlertPermissions.Read, "See rules, channels and alerts."),
        new(AlertPermissions.Write, "Create, change and delete rules and notification channels."),
    ];

    public override IReadOnlyList<EventTypeDefinition> EventTypes { get; } =
    [
        new(AlertEvents.Firing, "An alert started firing; data holds the alert. Audience system: all-events subscriptions receive it."),
        new(AlertEvents.Resolved, "A firing alert resolved; data holds the alert. Audience system: all-events subscriptions receive it."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<AlertsOptions, AlertsOptionsValidator>(context.Configuration, AlertsOptions.SectionName);
        services.TryAddSingleton<AlertConditions>();
        services.TryAddSingleton<AlertStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupTask, AlertStore>(sp => sp.GetRequiredService<AlertStore>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEnvelopeHolder, AlertStore>(sp => sp.GetRequiredService<AlertStore>()));
        services.TryAddSingleton<AlertEvaluator>();
        if (context.Runs(FundamentRoles.Control) && context.Enabled(AlertsOptions.SectionName, nameof(AlertsOptions.EvaluatorEnabled)))
        {
            services.AddHostedService(sp => sp.GetRequiredService<AlertEvaluator>());
        }
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapAlertsApi();
}

/// <summary>The domain events of the alerts module.</summary>
public static class AlertEvents
{
    public const string Firing = "alert.firing";
    public const string Resolved = "alert.resolved";
}
