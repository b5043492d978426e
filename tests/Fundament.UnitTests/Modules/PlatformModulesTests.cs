using Fundament.Core.Modules;
using Fundament.Core.Security;
using Fundament.Server;

namespace Fundament.UnitTests.Modules;

/// <summary>The modules of the <c>fundament</c> binary, as declared: what roles and webhooks can name.</summary>
public sealed class PlatformModulesTests
{
    private static readonly IReadOnlyList<FundamentModule> Modules = PlatformModules.All();

    [Fact]
    public void EveryRequiredModule_IsPartOfTheBinary()
    {
        var names = Modules.Select(m => m.Name).ToHashSet(StringComparer.Ordinal);

        Assert.All(Modules, m => Assert.All(m.Requires.Concat(m.Uses.Keys), r => Assert.Contains(r, names)));
    }

    [Fact]
    public void BuiltInRoles_GrantWhatTheyGrantedBeforeModulesDeclaredThem()
    {
        var catalog = new PermissionCatalog(Modules);

        Assert.Equal(["apikeys.own", "media.own", "media.shared", "webhooks.own"], catalog.GrantedTo(BuiltInRoles.User));
        Assert.Equal(["media.shared"], catalog.GrantedTo(BuiltInRoles.Guest));
        Assert.Equal(["config.read.own", "registry.read", "registry.register.own"], catalog.GrantedTo(BuiltInRoles.Service));
    }

    [Fact]
    public void EveryPermission_IsNamedLikeItsModule_AndDescribed()
    {
        var prefixes = new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            ["identity"] = ["users.", "roles.", "clients.", "apikeys.", "quotas."],
            ["delivery"] = ["deliveries.", "webhooks."],
        };
        foreach (var module in Modules)
        {
            var allowed = prefixes.GetValueOrDefault(module.Name) ?? [module.Name + "."];
            Assert.All(module.Permissions, p =>
            {
                Assert.Contains(allowed, prefix => p.Name.StartsWith(prefix, StringComparison.Ordinal));
                Assert.False(string.IsNullOrWhiteSpace(p.Description));
            });
        }
    }

    [Fact]
    public void EveryModulesDomainEvents_AreDeclared()
    {
        var catalog = new EventTypeCatalog(Modules);

        Assert.Equal([
            "*", "alert.firing", "alert.resolved",
            "instance.deregistered", "instance.registered", "instance.status_changed",
            "media.archived", "media.failed", "media.purged", "media.ready", "media.restored", "media.trashed",
            "secret.created", "secret.rotated",
        ], catalog.Names);
    }

    [Fact]
    public void EveryModulesMigrations_AreEmbedded_NumberedWithoutGaps_AndDescribed()
    {
        var withTables = Modules.Where(m => Fundament.Core.Storage.EmbeddedMigrations.In(m.GetType().Assembly)).Select(m => m.Name).ToList();
        Assert.Equal(["identity", "audit", "vault", "config", "registry", "gateway", "delivery", "alerts", "jobs", "media", "events", "messaging", "cluster", "backup", "analysis", "gpu"], withTables);

        foreach (var module in Modules)
        {
            var migrations = new Fundament.Core.Storage.EmbeddedMigrations(module.Name, module.GetType().Assembly).Migrations;
            Assert.Equal(Enumerable.Range(1, migrations.Count), migrations.Select(m => m.Version));
            Assert.All(migrations, m =>
            {
                Assert.False(string.IsNullOrWhiteSpace(m.Name));
                Assert.Contains(";", m.Sql, StringComparison.Ordinal);
            });
        }
    }
}
