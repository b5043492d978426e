using System.Net;
using System.Net.Http.Json;
using Fundament.Audit;
using Fundament.Core.Audit;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Fundament.Tests.Audit;

/// <summary>
/// A change and its audit entry are one unit of work: a fault between the two writes (before the
/// entry, or after it but before the commit) leaves neither behind, on both engines.
/// </summary>
public abstract class AuditAtomicityTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    protected FundamentFactory Factory { get; } = factory;

    internal static FaultPlan Plan { get; } = new();

    /// <summary>Replaces the audit log with one that fails on the planned action, before or after the entry is written.</summary>
    internal static void Inject(IServiceCollection services) =>
        services.Replace(ServiceDescriptor.Singleton<IAuditLog>(sp => new FaultyAuditLog(sp.GetRequiredService<AuditLog>(), Plan)));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AFaultAroundTheAuditEntry_LeavesNeitherTheChangeNorTheEntry(bool afterTheEntry)
    {
        using var admin = await Factory.AdminAsync();
        var username = Api.UniqueName(afterTheEntry ? "after" : "before");
        Plan.Arm("user.create", afterTheEntry);
        HttpResponseMessage response;
        try
        {
            response = await admin.PostAsJsonAsync("/api/v1/users", new { username, password = Api.UserPassword }, _ct);
        }
        finally
        {
            Plan.Disarm();
        }
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var users = await (await admin.GetAsync($"/api/v1/users?q={username}", _ct)).JsonAsync();
        Assert.Empty(users["items"]!.AsArray());
        var entries = await (await admin.GetAsync("/api/v1/audit?action=user.create&limit=500", _ct)).JsonAsync();
        Assert.DoesNotContain(entries["items"]!.AsArray(), e => e!["details"]?["username"]?.GetValue<string>() == username);

        // And with no fault, both are there.
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/users", new { username, password = Api.UserPassword }, _ct)).StatusCode);
        var after = await (await admin.GetAsync("/api/v1/audit?action=user.create&limit=500", _ct)).JsonAsync();
        Assert.Contains(after["items"]!.AsArray(), e => e!["details"]?["username"]?.GetValue<string>() == username);
        Assert.True((await (await admin.GetAsync("/api/v1/audit/verify", _ct)).JsonAsync())["valid"]!.GetValue<bool>());
    }

    [Fact]
    public async Task AFaultAfterASecretsEntry_StoresNoNewVersion()
    {
        using var admin = await Factory.AdminAsync();
        var path = "atomic/" + Guid.NewGuid().ToString("N")[..8];
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "first" }, _ct)).StatusCode);
        Plan.Arm("secret.write", after: true);
        try
        {
            Assert.Equal(HttpStatusCode.InternalServerError, (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "second" }, _ct)).StatusCode);
        }
        finally
        {
            Plan.Disarm();
        }
        var read = await (await admin.GetAsync($"/api/v1/secrets/{path}", _ct)).JsonAsync();
        Assert.Equal("first", read["value"]!.GetValue<string>());
        Assert.Equal(1, read["version"]!.GetValue<int>());
    }

    /// <summary>Which action fails, and on which side of its entry.</summary>
    internal sealed class FaultPlan
    {
        private readonly Lock _gate = new();
        private (string Action, bool After)? _armed;

        public void Arm(string action, bool after)
        {
            lock (_gate)
            {
                _armed = (action, after);
            }
        }

        public void Disarm()
        {
            lock (_gate)
            {
                _armed = null;
            }
        }

        public bool Fails(string action, bool after)
        {
            lock (_gate)
            {
                return _armed is { } armed && armed.Action == action && armed.After == after;
            }
        }
    }

    private sealed class FaultyAuditLog(IAuditLog inner, FaultPlan plan) : IAuditLog
    {
        public async Task AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
        {
            if (plan.Fails(auditEvent.Action, after: false))
            {
                throw new InvalidOperationException("injected fault before the audit entry");
            }
            await inner.AppendAsync(auditEvent, cancellationToken);
            if (plan.Fails(auditEvent.Action, after: true))
            {
                throw new InvalidOperationException("injected fault after the audit entry, before the commit");
            }
        }
    }
}

/// <summary>A server whose audit log fails on command.</summary>
public sealed class FaultySqliteServer : IAsyncLifetime
{
    public FundamentFactory Factory { get; } = new ConfiguredFundamentFactory([]) { TestServices = AuditAtomicityTests.Inject };

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => Factory.DisposeAsync();
}

/// <summary>The same on PostgreSQL.</summary>
public sealed class FaultyPostgresServer : IAsyncLifetime
{
    private readonly PostgresFundamentFactory _factory = new() { TestServices = AuditAtomicityTests.Inject };

    public FundamentFactory Factory => _factory;

    public ValueTask InitializeAsync() => _factory.InitializeAsync();

    public ValueTask DisposeAsync() => _factory.DisposeAsync();
}

[Collection(nameof(AuditAtomicityCollection))]
public sealed class SqliteAuditAtomicityTests(FaultySqliteServer server) : AuditAtomicityTests(server.Factory), IClassFixture<FaultySqliteServer>;

[Collection(nameof(AuditAtomicityCollection))]
public sealed class PostgresAuditAtomicityTests : AuditAtomicityTests, IClassFixture<FaultyPostgresServer>
{
    public PostgresAuditAtomicityTests(FaultyPostgresServer server) : base(server.Factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}

/// <summary>The fault plan is shared: these classes run one after the other.</summary>
[CollectionDefinition(nameof(AuditAtomicityCollection), DisableParallelization = true)]
public sealed class AuditAtomicityCollection;
