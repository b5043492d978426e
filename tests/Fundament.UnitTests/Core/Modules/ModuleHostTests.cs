using Fundament.Core.Hosting;
using Fundament.Core.Modules;
using Fundament.Core.Security;
using Fundament.Core.Storage;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Fundament.UnitTests.Core.Modules;

public sealed class ModuleHostTests
{
    private sealed class TestModule(string name, string[]? requires = null, PermissionDefinition[]? permissions = null, EventTypeDefinition[]? events = null) : FundamentModule
    {
        public List<RoleSet> AddedFor { get; } = [];

        public override string Name => name;

        public override IReadOnlyList<string> Requires => requires ?? [];

        public override IReadOnlyList<PermissionDefinition> Permissions => permissions ?? [];

        public override IReadOnlyList<EventTypeDefinition> EventTypes => events ?? [];

        public override void AddServices(ModuleContext context) => AddedFor.Add(context.Roles);
    }

    private static RoleSet Roles(params string[] roles) => new(roles.ToHashSet(StringComparer.Ordinal));

    private static IServiceCollection Add(RoleSet roles, params FundamentModule[] modules)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddFundamentModules(new ConfigurationBuilder().Build(), roles, modules);
        return services;
    }

    [Fact]
    public void AModuleWhoseRequiredModuleIsAbsent_StopsStartUp_NamingBoth()
    {
        var error = Assert.Throws<StartupException>(() => Add(Roles(FundamentRoles.Control), new TestModule("alerts", requires: ["delivery"])));

        Assert.Equal("module 'alerts' needs module 'delivery', which this host does not include.", error.Message);
    }

    [Fact]
    public void AModuleListedTwice_StopsStartUp()
    {
        var error = Assert.Throws<StartupException>(() => Add(Roles(FundamentRoles.Control), new TestModule("jobs"), new TestModule("jobs")));

        Assert.Contains("'jobs' is listed twice", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryModuleAddsItsServices_SeeingTheNodesRoles()
    {
        var a = new TestModule("a");
        var b = new TestModule("b", requires: ["a"]);

        Add(Roles(FundamentRoles.Gateway), a, b);

        Assert.True(Assert.Single(a.AddedFor).Runs(FundamentRoles.Gateway));
        Assert.False(Assert.Single(b.AddedFor).Runs(FundamentRoles.Control));
    }

    [Fact]
    public void Declarations_AreKnownOnEveryNode_AndEachPermissionIsAPolicy()
    {
        var media = new TestModule("media",
            permissions: [new("media.own", "own media", BuiltInRoles.User), new("media.shared", "shared", BuiltInRoles.User, BuiltInRoles.Guest)],
            events: [new("media.ready", "ready")]);

        // A gateway-only node runs no media, yet knows its permissions (roles grant them) and events (webhooks name them).
        using var provider = Add(Roles(FundamentRoles.Gateway), media).BuildServiceProvider();

        var permissions = provider.GetRequiredService<PermissionCatalog>();
        Assert.Equal(["media.own", "media.shared"], permissions.Known.Order(StringComparer.Ordinal));
        Assert.Equal(["media.own", "media.shared"], permissions.GrantedTo(BuiltInRoles.User));
        Assert.Equal(["media.shared"], permissions.GrantedTo(BuiltInRoles.Guest));
        Assert.Empty(permissions.GrantedTo(BuiltInRoles.Service));

        var events = provider.GetRequiredService<EventTypeCatalog>();
        Assert.True(events.IsKnown("media.ready"));
        Assert.True(events.IsKnown("*"));
        Assert.False(events.IsKnown("media.exploded"));

        var authorization = provider.GetRequiredService<IOptions<AuthorizationOptions>>().Value;
        Assert.NotNull(authorization.GetPolicy("media.own"));
        Assert.Null(authorization.GetPolicy("media.exploded"));
    }

    [Fact]
    public void APermissionDeclaredTwiceDifferently_IsRefused()
    {
        var catalog = () => new PermissionCatalog(
        [
            new TestModule("a", permissions: [new("x.read", "one thing")]),
            new TestModule("b", permissions: [new("x.read", "another thing")]),
        ]);

        Assert.Throws<InvalidOperationException>(catalog);
    }

    [Fact]
    public void EveryModuleWithMigrationFiles_GetsItsOwnMigrationSource()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddFundamentModules(new ConfigurationBuilder().Build(), Roles(FundamentRoles.Control), Fundament.Server.PlatformModules.All());

        var modules = services.Where(d => d.ServiceType == typeof(IMigrationSource)).Select(d => ((IMigrationSource)d.ImplementationInstance!).Module).ToList();

        Assert.Equal(["identity", "audit", "vault", "config", "registry", "gateway", "delivery", "alerts", "jobs", "media", "events", "messaging", "cluster", "backup", "analysis", "gpu"], modules);
    }
}
