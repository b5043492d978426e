using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Dapper;
using Fundament.Core.Hosting;
using Fundament.Core.Security;
using Fundament.Core.Storage;
using Fundament.Server.Health;
using Fundament.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Fundament.Tests.Hosting;

public sealed class PlatformEndpointTests(SqliteFundamentFactory factory) : IClassFixture<SqliteFundamentFactory>
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task Health_LiveAndReady_AnswerJson()
    {
        using var client = factory.CreateClient();
        var live = await client.GetAsync("/health/live", _ct);
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        var ready = await client.GetAsync("/health/ready", _ct);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var body = await ready.JsonAsync();
        Assert.Equal("Healthy", body["status"]!.GetValue<string>());
        Assert.Equal("sqlite", body["checks"]!["database"]!["description"]!.GetValue<string>());
    }

    [Fact]
    public async Task DatabaseCheck_IsUnhealthy_WhenTheDatabaseIsUnreachable()
    {
        // A real PostgreSQL client against a port where nothing listens.
        await using var database = new PostgresDatabase(new NpgsqlDataSourceBuilder("Host=127.0.0.1;Port=1;Username=x;Timeout=2").Build());
        var check = new DatabaseHealthCheck(database);
        var result = await check.CheckHealthAsync(new HealthCheckContext
        {
            Registration = new HealthCheckRegistration("database", check, HealthStatus.Unhealthy, null),
        }, _ct);
        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Equal("postgres is unreachable", result.Description);
    }

    [Fact]
    public async Task Metrics_ArePrometheusText_WithFundamentSeries()
    {
        await factory.LoginAsync("admin", FundamentFactory.AdminPassword);
        using var client = factory.CreateClient();
        var response = await client.GetAsync("/metrics", _ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync(_ct);
        Assert.Contains("fundament_identity_logins_total{", text, StringComparison.Ordinal);
        Assert.Contains("fundament_audit_entries_total", text, StringComparison.Ordinal);
        Assert.Contains("fundament_identity_tokens_issued_total", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenApi_DescribesEveryModule()
    {
        using var client = factory.CreateClient();
        var document = JsonNode.Parse(await client.GetStringAsync("/openapi/v1.json", _ct))!;
        var paths = document["paths"]!.AsObject().Select(p => p.Key).ToList();
        foreach (var expected in new[] { "/api/v1/auth/login", "/api/v1/users", "/api/v1/users/{id}", "/api/v1/clients", "/api/v1/api-keys", "/api/v1/audit", "/api/v1/audit/verify", "/oauth2/token", "/.well-known/jwks.json", "/api/v1/me/sessions",
            "/api/v1/secrets/{path}", "/api/v1/secret-policies", "/api/v1/vault/rotate-master-key", "/api/v1/config/resolved", "/api/v1/config/entries",
            "/api/v1/registry/instances", "/api/v1/registry/services/{name}/instances", "/api/v1/alerts", "/api/v1/alerts/channels", "/api/v1/deliveries/{id}" })
        {
            Assert.Contains(expected, paths);
        }
    }

    [Fact]
    public async Task OpenApi_EveryOperation_HasASummaryAUniqueIdTagsSecurityAndItsProblems()
    {
        using var client = factory.CreateClient();
        var document = JsonNode.Parse(await client.GetStringAsync("/openapi/v1.json", _ct))!;
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var failures = new List<string>();
        foreach (var (path, item) in document["paths"]!.AsObject())
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                var where = $"{method.ToUpperInvariant()} {path}";
                if (operation!["summary"]?.GetValue<string>() is not { Length: > 0 })
                {
                    failures.Add($"{where}: no summary");
                }
                if (operation["operationId"]?.GetValue<string>() is not { Length: > 0 } id || !ids.Add(id))
                {
                    failures.Add($"{where}: missing or repeated operationId");
                }
                if (operation["tags"] is not JsonArray { Count: > 0 })
                {
                    failures.Add($"{where}: no tags");
                }
                if (operation["security"] is not JsonArray security)
                {
                    failures.Add($"{where}: no security (an empty list marks a public operation)");
                }
                else if (security.Count > 0 && operation["responses"]?["401"] is null)
                {
                    failures.Add($"{where}: needs a credential but documents no 401");
                }
                var problems = operation["responses"]!.AsObject().Where(r => r.Key.StartsWith('4')).ToList();
                // Discovery documents and the tus OPTIONS answer cannot fail on input.
                var cannotFail = path.StartsWith("/.well-known/", StringComparison.Ordinal) || method == "options";
                if (!cannotFail && (problems.Count == 0 || problems.Any(p => p.Value?["content"]?["application/problem+json"] is null)))
                {
                    failures.Add($"{where}: 4xx answers missing, or not as problem details");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>
    /// docs/openapi.json is what client generators (and the Kiota smoke in CI) read. It must be the
    /// document the server serves. After an API change: FUNDAMENT_UPDATE_OPENAPI=1 dotnet test --filter OpenApi_TheCommittedDocument
    /// </summary>
    [Fact]
    public async Task OpenApi_TheCommittedDocument_IsTheServedOne()
    {
        using var client = factory.CreateClient();
        var served = JsonNode.Parse(await client.GetStringAsync("/openapi/v1.json", _ct))!;
        var file = Path.Combine(DeploymentFilesTests.RepoRoot(), "docs", "openapi.json");
        if (Environment.GetEnvironmentVariable("FUNDAMENT_UPDATE_OPENAPI") == "1")
        {
            await File.WriteAllTextAsync(file, served.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n", _ct);
        }
        var committed = JsonNode.Parse(await File.ReadAllTextAsync(file, _ct))!;
        Assert.True(JsonNode.DeepEquals(served, committed),
            "docs/openapi.json is not the document the server serves: run FUNDAMENT_UPDATE_OPENAPI=1 dotnet test --filter OpenApi_TheCommittedDocument and commit it.");
    }

    [Fact]
    public void Guard_RefusesToStart_WhenAnEndpointNamesNoPolicy()
    {
        var builder = WebApplication.CreateBuilder();
        var app = builder.Build();
        app.MapGet("/open", () => "ok").AllowAnonymous();
        app.MapGet("/forgotten", () => "oops");
        var error = Assert.Throws<StartupException>(app.EnsureEveryEndpointHasAPolicy);
        Assert.Contains("/forgotten", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("/open", error.Message, StringComparison.Ordinal);
    }
}

/// <summary>A real fault inside a request (a table gone): 500 as problem details that say nothing of the cause.</summary>
public sealed class ServerErrorTests(SqliteFundamentFactory factory) : IClassFixture<SqliteFundamentFactory>
{
    [Fact]
    public async Task ServerError_DoesNotEchoTheException()
    {
        var ct = TestContext.Current.CancellationToken;
        using var admin = await factory.AdminAsync();
        await using (var connection = await factory.Services.GetRequiredService<IDatabase>().OpenAsync(ct))
        {
            await connection.ExecuteAsync("DROP TABLE identity_api_keys");
        }
        var response = await admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "x" }, ct);
        await response.AssertProblemAsync(HttpStatusCode.InternalServerError);
        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.DoesNotContain("identity_api_keys", body, StringComparison.Ordinal);
        Assert.DoesNotContain("SQLite", body, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(" at ", body, StringComparison.Ordinal);
    }
}
