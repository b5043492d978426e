namespace Fundament.Core.Modules;

/// <summary>What a module sees while it registers its services.</summary>
public sealed class ModuleContext(IServiceCollection services, IConfiguration configuration, RoleSet roles, IReadOnlySet<string> modules)
{
    public IServiceCollection Services { get; } = services;

    public IConfiguration Configuration { get; } = configuration;

    /// <summary>The roles this node runs.</summary>
    public RoleSet Roles { get; } = roles;

    /// <summary>Whether this node runs <paramref name="role"/> (see <see cref="FundamentRoles"/>).</summary>
    public bool Runs(string role) => Roles.Runs(role);

    /// <summary>Whether module <paramref name="name"/> is part of this host.</summary>
    public bool Has(string name) => modules.Contains(name);

    /// <summary>A boolean switch under the module's section, e.g. <c>Fundament:Delivery:DispatcherEnabled</c>.</summary>
    public bool Enabled(string section, string key, bool defaultValue = true) =>
        Configuration.GetValue(section + ":" + key, defaultValue);
}
