namespace Fundament.Config;

/// <summary>Module <c>config</c>: layered, versioned, schema-checked configuration with watches.</summary>
public sealed class ConfigModule : FundamentModule
{
    public override string Name => "config";

    public override IReadOnlyList<PermissionDefinition> Permissions { get; } =
    [
        new(ConfigPermissions.Read, "Every service's entries, history, schemas and resolved configuration."),
        new(ConfigPermissions.ReadOwn, "The resolved configuration of the service named like one's own client, nothing else.", BuiltInRoles.Service),
        new(ConfigPermissions.Write, "Set, delete and roll back entries; manage schemas."),
    ];

    public override void AddServices(ModuleContext context)
    {
        var services = context.Services;
        services.AddSettings<ConfigOptions, ConfigOptionsValidator>(context.Configuration, ConfigOptions.SectionName);
        services.TryAddSingleton<ConfigStore>();
        services.TryAddSingleton<ConfigSchemas>();
        services.TryAddSingleton<IConfigResolver, ConfigResolver>();
    }

    public override void MapEndpoints(IEndpointRouteBuilder endpoints) => endpoints.MapConfigApi();
}
