namespace Fundament.Core.Modules;

/// <summary>
/// One module of the platform: what it declares (permissions, event types), which modules it
/// needs, the services it registers for the roles this node runs, and the endpoints it maps.
/// <c>Program.cs</c> is the list of modules; <see cref="ModuleHost"/> wires them.
/// </summary>
/// <remarks>
/// Declarations are made on every node whatever its roles, so a control-only node knows the
/// media permissions its roles grant and the media events webhooks subscribe to, even though it
/// never runs media. Services and endpoints follow the roles (<see cref="ModuleContext.Runs"/>).
/// </remarks>
public abstract class FundamentModule : IPermissionSource, IEventTypeSource
{
    /// <summary>Lower-case name: <c>identity</c>, <c>media</c>. Also the prefix of its tables and metrics.</summary>
    public abstract string Name { get; }

    /// <summary>Modules this one cannot work without; start-up fails naming the one missing.</summary>
    public virtual IReadOnlyList<string> Requires => [];

    /// <summary>
    /// Modules this one uses when they are there, and what it loses without them. Start-up logs
    /// each absent one with that sentence, so nothing is disabled silently.
    /// </summary>
    public virtual IReadOnlyDictionary<string, string> Uses => new Dictionary<string, string>();

    /// <summary>The role whose nodes serve this module's HTTP API (<see cref="MapEndpoints"/>).</summary>
    public virtual string ApiRole => Hosting.FundamentRoles.Control;

    /// <inheritdoc />
    public virtual IReadOnlyList<PermissionDefinition> Permissions => [];

    /// <inheritdoc />
    public virtual IReadOnlyList<EventTypeDefinition> EventTypes => [];

    /// <summary>Registers options, stores, migrations and background services for the roles in <paramref name="context"/>.</summary>
    public abstract void AddServices(ModuleContext context);

    /// <summary>Middleware ahead of endpoint routing (the gateway branches off here). Most modules have none.</summary>
    public virtual void UseMiddleware(IApplicationBuilder app, ModuleContext context)
    {
    }

    /// <summary>Maps the module's API; called on nodes that run <see cref="ApiRole"/>.</summary>
    public virtual void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
    }

    public override string ToString() => Name;
}
