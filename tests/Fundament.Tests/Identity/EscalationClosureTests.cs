using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Fundament.Core.Storage;
using Fundament.Tests.Infrastructure;
using Fundament.Tests.Media;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Identity;

/// <summary>
/// The escalation rule, proven for the whole API rather than case by case. For every built-in
/// permission and every built-in role, a principal holding only that tries every mutating endpoint
/// (read from the endpoint data source, so a new endpoint is covered without touching this test),
/// with bodies generated from the endpoint's OpenAPI request schema, against what belongs to more
/// privileged principals: the admin user, its session and API key, an admin client, root vault
/// policies and secrets, the admin role, an admin's media and webhooks. Then it checks, in the
/// database, that none of those changed and that nothing anyone created or changed holds more than
/// its creator did.
/// </summary>
public class EscalationClosureTests : MediaTestBase
{
    private const string AttackPassword = "Escalated-Password-99!";

    private sealed record Principal(string Name, string Actor, IReadOnlySet<string> Permissions, Func<Task<HttpClient>> Login)
    {
        public HttpClient? Client { get; set; }
    }

    /// <summary>
    /// What the sweep aims at: the admin's things, and principals whose power is bound to them by
    /// name rather than by permissions (a user with a vault policy of its own, a client with a
    /// registry grant, the role <see cref="VaultRole"/> that only a vault policy makes worth having).
    /// </summary>
    private sealed record Targets(string AdminUserId, string AdminSessionId, string AdminKeyId, string AdminClientId, string RootPolicyId, string SecretPath, string AssetId, string WebhookId,
        string VaultUserId, string GrantedClientId)
    {
        public IEnumerable<string> All => [AdminUserId, AdminSessionId, AdminKeyId, AdminClientId, RootPolicyId, AssetId, WebhookId, VaultUserId, GrantedClientId, "admin", VaultRole];
    }

    private const string VaultRole = "vault-prod";

    [Fact]
    public async Task NoPermissionOrBuiltInRole_LeadsToABiggerOne()
    {
        var targets = await PrepareTargetsAsync();
        var before = await SnapshotAsync(targets);
        var principals = await PrincipalsAsync();
        var openApi = JsonNode.Parse(await Admin.GetStringAsync("/openapi/v1.json", Ct))!;
        var endpoints = EndpointCatalog.All(Factory)
            .Where(e => e.Method is "POST" or "PUT" or "PATCH" or "DELETE")
            .Distinct()
            .OrderBy(e => e.Template, StringComparer.Ordinal).ThenBy(e => e.Method, StringComparer.Ordinal)
            .ToList();
        Assert.True(endpoints.Count > 50, $"only {endpoints.Count} mutating endpoints were found");

        var attempts = 0;
        var succeeded = new List<string>();
        var faults = new List<string>();
        foreach (var principal in principals)
        {
            foreach (var (method, template, _) in endpoints)
            {
                foreach (var path in Paths(template, targets))
                {
                    foreach (var body in Bodies(openApi, template, method, principal, targets))
                    {
                        attempts++;
                        var status = await SendAsync(principal, method, path, body);
                        if ((int)status is >= 200 and < 300)
                        {
                            succeeded.Add($"{principal.Name} {method} {path}");
                        }
                        else if ((int)status >= 500)
                        {
                            faults.Add($"{principal.Name} {method} {path} {body?.ToJsonString()}: {(int)status}");
                        }
                    }
                }
            }
        }
        Assert.True(attempts > 1000, $"only {attempts} attempts were made");
        Assert.True(faults.Count == 0, "server errors:\n" + string.Join("\n", faults.Take(50)));

        var after = await SnapshotAsync(targets);
        foreach (var (what, value) in before)
        {
            Assert.True(after.TryGetValue(what, out var now) && now == value, $"{what} changed:\n  before: {value}\n  after:  {(now ?? "(gone)")}\nsucceeded calls:\n  {string.Join("\n  ", succeeded.Take(200))}");
        }
        await AssertNothingExceedsItsCreatorAsync(principals);
    }

    /// <summary>What belongs to the more privileged principals, created as the bootstrap admin.</summary>
    private async Task<Targets> PrepareTargetsAsync()
    {
        var adminId = (await (await Admin.GetAsync("/api/v1/me", Ct)).JsonAsync())["id"]!.GetValue<string>();
        var session = (await (await Admin.GetAsync("/api/v1/me/sessions", Ct)).JsonAsync()).AsArray()[0]!["id"]!.GetValue<string>();
        var key = await (await Admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "admin-key" }, Ct)).JsonAsync();
        var client = await (await Admin.PostAsJsonAsync("/api/v1/clients", new { name = Api.UniqueName("admin-client"), roles = new[] { "admin" } }, Ct)).JsonAsync();
        var path = "root/db-password";
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "the-root-secret" }, Ct)).StatusCode);
        var policy = await (await Admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"user:{adminId}", pathPrefix = "", capabilities = new[] { "read", "write", "list", "delete" } }, Ct)).JsonAsync();
        var asset = await UploadNewAsync(Admin, Image("png", 48, 48));
        var webhook = await (await Admin.PostAsJsonAsync("/api/v1/webhooks", new { url = "https://hooks.example.com/admin", events = new[] { "media.ready" } }, Ct)).JsonAsync();

        // Power bound by name: a role whose only worth is a vault policy, a plain user with a
        // policy of its own, a service client with a registry grant.
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync("/api/v1/roles", new { name = VaultRole, permissions = new[] { "media.shared" } }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutAsJsonAsync("/api/v1/secrets/prod/api-key", new { value = "the-prod-secret" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"role:{VaultRole}", pathPrefix = "prod", capabilities = new[] { "read" } }, Ct)).StatusCode);
        var (vaultUserId, _) = await Factory.CreateUserAsync(["user"]);
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"user:{vaultUserId}", pathPrefix = "prod", capabilities = new[] { "read" } }, Ct)).StatusCode);
        var granted = await (await Admin.PostAsJsonAsync("/api/v1/clients", new { name = Api.UniqueName("payments-client"), roles = new[] { "service" } }, Ct)).JsonAsync();
        var grantedId = granted["client_id"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync("/api/v1/registry/grants", new { clientId = grantedId, service = "payments" }, Ct)).StatusCode);
        return new Targets(adminId, session, key["id"]!.GetValue<string>(), client["client_id"]!.GetValue<string>(), policy["id"]!.GetValue<string>(), path, asset, webhook["id"]!.GetValue<string>(),
            vaultUserId, grantedId);
    }

    /// <summary>One principal per built-in permission (a custom role holding only it) and per built-in role but admin.</summary>
    private async Task<List<Principal>> PrincipalsAsync()
    {
        var permissions = (await (await Admin.GetAsync("/api/v1/roles/permissions", Ct)).JsonAsync()).AsArray().Select(p => p!.GetValue<string>()).Where(p => p != "*").ToList();
        Assert.True(permissions.Count > 15, "the permission list looks short");
        var roles = (await (await Admin.GetAsync("/api/v1/roles?limit=500", Ct)).JsonAsync()).AsArray();
        var principals = new List<Principal>();
        foreach (var permission in permissions)
        {
            var role = "only-" + permission.Replace('.', '-');
            Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync("/api/v1/roles", new { name = role, permissions = new[] { permission } }, Ct)).StatusCode);
            principals.Add(await UserPrincipalAsync(role, new HashSet<string>(StringComparer.Ordinal) { permission }));
        }
        foreach (var role in roles.Where(r => r!["builtin"]!.GetValue<bool>() && r["name"]!.GetValue<string>() != "admin"))
        {
            var held = role!["permissions"]!.AsArray().Select(p => p!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
            var name = role["name"]!.GetValue<string>();
            principals.Add(await UserPrincipalAsync(name, held));
            if (name == "service")
            {
                // A service's own client, as services really hold this role.
                var clientName = Api.UniqueName("svc");
                var created = await (await Admin.PostAsJsonAsync("/api/v1/clients", new { name = clientName, roles = new[] { "service" } }, Ct)).JsonAsync();
                var id = created["client_id"]!.GetValue<string>();
                var secret = created["client_secret"]!.GetValue<string>();
                principals.Add(new Principal("client:service", $"client:{id}", held, async () =>
                {
                    using var anonymous = Factory.CreateClient();
                    var token = await (await anonymous.PostAsync("/oauth2/token", new FormUrlEncodedContent(new Dictionary<string, string>
                    {
                        ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = secret,
                    }), Ct)).JsonAsync();
                    return Factory.Bearer(token["access_token"]!.GetValue<string>());
                }));
            }
        }
        return principals;
    }

    private async Task<Principal> UserPrincipalAsync(string role, IReadOnlySet<string> held)
    {
        var (id, username) = await Factory.CreateUserAsync([role]);
        return new Principal("role:" + role, $"user:{id}", held, async () =>
            Factory.Bearer((await Factory.LoginAsync(username, Api.UserPassword))["access_token"]!.GetValue<string>()));
    }

    private async Task<HttpStatusCode> SendAsync(Principal principal, string method, string path, JsonObject? body)
    {
        for (var attempt = 0; ; attempt++)
        {
            principal.Client ??= await principal.Login();
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (body is not null)
            {
                request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            }
            using var response = await principal.Client.SendAsync(request, Ct);
            // Its own token ended (it ended its own session, say): log in again and retry once.
            if (response.StatusCode == HttpStatusCode.Unauthorized && attempt == 0 && (await principal.Client.GetAsync("/api/v1/me", Ct)).StatusCode == HttpStatusCode.Unauthorized)
            {
                principal.Client.Dispose();
                principal.Client = null;
                continue;
            }
            return response.StatusCode;
        }
    }

    /// <summary>The template filled with the privileged objects its parameters could name.</summary>
    private static IEnumerable<string> Paths(string template, Targets targets)
    {
        var parameters = System.Text.RegularExpressions.Regex.Matches(template, "{([^}]+)}").Select(m => m.Groups[1].Value).ToList();
        IEnumerable<string> paths = [template];
        foreach (var parameter in parameters)
        {
            var candidates = Candidates(template, parameter.TrimStart('*'), targets).ToList();
            paths = paths.SelectMany(p => candidates.Select(c => p.Replace("{" + parameter + "}", parameter.StartsWith('*') ? c : Uri.EscapeDataString(c), StringComparison.Ordinal)));
        }
        return paths.Distinct(StringComparer.Ordinal);
    }

    private static IEnumerable<string> Candidates(string template, string parameter, Targets targets) => parameter switch
    {
        "quota" => ["storedBytes", "apiKeys"],
        "path" => [targets.SecretPath],
        "role" or "name" when template.Contains("/roles", StringComparison.Ordinal) || template.Contains("/quotas", StringComparison.Ordinal) => ["admin", VaultRole],
        "id" when template.StartsWith("/api/v1/users", StringComparison.Ordinal) || template.StartsWith("/api/v1/quotas/users", StringComparison.Ordinal) => [targets.AdminUserId, targets.VaultUserId],
        "id" when template.StartsWith("/api/v1/clients", StringComparison.Ordinal) || template.StartsWith("/api/v1/quotas/clients", StringComparison.Ordinal) => [targets.AdminClientId, targets.GrantedClientId],
        "id" when template.StartsWith("/api/v1/api-keys", StringComparison.Ordinal) => [targets.AdminKeyId],
        "id" when template.StartsWith("/api/v1/me/sessions", StringComparison.Ordinal) => [targets.AdminSessionId],
        "id" when template.StartsWith("/api/v1/secret-policies", StringComparison.Ordinal) => [targets.RootPolicyId],
        "id" when template.StartsWith("/api/v1/media/uploads", StringComparison.Ordinal) => ["00000000-0000-0000-0000-000000000000"],
        "id" when template.StartsWith("/api/v1/media", StringComparison.Ordinal) => [targets.AssetId],
        "id" when template.StartsWith("/api/v1/webhooks", StringComparison.Ordinal) => [targets.WebhookId],
        _ => targets.All,
    };

    /// <summary>
    /// Bodies from the endpoint's request schema: every property at its most ambitious value, and
    /// each ambitious value alone (so one refused field cannot hide another that would pass).
    /// </summary>
    private static IEnumerable<JsonObject?> Bodies(JsonNode openApi, string template, string method, Principal principal, Targets targets)
    {
        var operation = openApi["paths"]?[template]?[method.ToLowerInvariant()];
        var schema = operation?["requestBody"]?["content"]?["application/json"]?["schema"];
        if (schema is null)
        {
            yield return null;
            yield break;
        }
        schema = Resolve(openApi, schema);
        if (schema["properties"] is not JsonObject properties)
        {
            yield return new JsonObject();
            yield break;
        }
        var full = new JsonObject();
        foreach (var (name, property) in properties)
        {
            full[name] = Ambitious(name, Resolve(openApi, property!), principal, targets);
        }
        yield return full;
        foreach (var (name, _) in properties)
        {
            yield return new JsonObject { [name] = full[name]!.DeepClone() };
        }
        if (properties.ContainsKey("roles"))
        {
            // A role worth nothing by its permissions, everything by the vault policy bound to its name.
            var bound = full.DeepClone().AsObject();
            bound["roles"] = new JsonArray(VaultRole);
            yield return bound;
            yield return new JsonObject { ["roles"] = new JsonArray(VaultRole) };
        }
    }

    private static JsonNode Resolve(JsonNode openApi, JsonNode schema)
    {
        if (schema["$ref"]?.GetValue<string>() is { } reference)
        {
            var node = openApi;
            foreach (var part in reference.TrimStart('#', '/').Split('/'))
            {
                node = node[part]!;
            }
            return Resolve(openApi, node);
        }
        if ((schema["oneOf"] ?? schema["anyOf"]) is JsonArray alternatives
            && alternatives.FirstOrDefault(a => Resolve(openApi, a!)["type"]?.ToJsonString() != "\"null\"") is { } first)
        {
            return Resolve(openApi, first);
        }
        return schema;
    }

    private static string TypeOf(JsonNode schema) => schema["type"] switch
    {
        JsonArray types => types.Select(t => t!.GetValue<string>()).FirstOrDefault(t => t != "null") ?? "null",
        JsonValue type => type.GetValue<string>(),
        _ => schema["properties"] is not null ? "object" : "string",
    };

    /// <summary>The value a field would need to take over something bigger.</summary>
    private static JsonNode? Ambitious(string name, JsonNode schema, Principal principal, Targets targets) => name.ToLowerInvariant() switch
    {
        "roles" => new JsonArray("admin"),
        "permissions" => new JsonArray("*"),
        "capabilities" => new JsonArray("read", "write", "list", "delete"),
        "pathprefix" => "",
        "principal" => principal.Actor,
        "password" or "newpassword" => AttackPassword,
        "currentpassword" => "not-the-current-password",
        "email" => "attacker@example.com",
        "username" => Api.UniqueName("escalator"),
        "disabled" or "unlimited" or "allowners" or "keepapikeys" or "legalhold" => true,
        "limit" => 0,
        "url" or "target" => "https://hooks.example.com/escalation",
        "events" => new JsonArray("media.ready"),
        "secret" => "whsec_" + Convert.ToBase64String(new byte[24]),
        "service" => "victim",
        "clientid" or "client_id" => targets.AdminClientId,
        "userid" or "user_id" => targets.AdminUserId,
        "sharedwith" or "shares" => new JsonArray(principal.Actor.Split(':')[1]),
        _ => TypeOf(schema) switch
        {
            "array" => new JsonArray("x"),
            "boolean" => true,
            "integer" or "number" => 1,
            "object" => new JsonObject(),
            _ => name.Contains("name", StringComparison.OrdinalIgnoreCase) ? Api.UniqueName("esc") : "x",
        },
    };

    /// <summary>The security-relevant state of everything the principals must not reach, read from the database.</summary>
    private async Task<Dictionary<string, string>> SnapshotAsync(Targets targets)
    {
        await using var connection = await Factory.Services.GetRequiredService<IDatabase>().OpenAsync(Ct);
        async Task<string> RowsAsync(string sql, object? parameters = null) =>
            JsonSerializer.Serialize((await connection.QueryAsync(sql, parameters)).Select(r => (IDictionary<string, object?>)r).Select(r => r.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}")));
        return new Dictionary<string, string>
        {
            ["admin user"] = await RowsAsync("SELECT username, email, password_hash, disabled, password_changed_at FROM identity_users WHERE id = @id", new { id = targets.AdminUserId }),
            ["admin user's roles"] = await RowsAsync("SELECT role FROM identity_user_roles WHERE user_id = @id ORDER BY role", new { id = targets.AdminUserId }),
            // (The test's own admin logins add sessions; the one it watches must stay live.)
            ["admin user's session"] = await RowsAsync("SELECT id, revoked_at, expires_at FROM identity_sessions WHERE id = @id", new { id = targets.AdminSessionId }),
            ["admin user's API keys"] = await RowsAsync("SELECT id, roles, revoked_at, expires_at FROM identity_api_keys WHERE user_id = @id ORDER BY id", new { id = targets.AdminUserId }),
            ["admin client"] = await RowsAsync("SELECT name, secret_hash, roles, disabled FROM identity_clients WHERE id = @id", new { id = targets.AdminClientId }),
            ["admin role"] = await RowsAsync("SELECT name, permissions FROM identity_roles WHERE name = 'admin'"),
            ["admin clients"] = await RowsAsync("SELECT id FROM identity_clients WHERE roles LIKE '%\"admin\"%' ORDER BY id"),
            ["admin users"] = await RowsAsync("SELECT user_id FROM identity_user_roles WHERE role = 'admin' ORDER BY user_id"),
            ["roles granting *"] = await RowsAsync("SELECT name FROM identity_roles WHERE permissions LIKE '%\"*\"%' ORDER BY name"),
            ["root vault policies"] = await RowsAsync("SELECT id, principal, path_prefix, capabilities FROM vault_policies WHERE principal = @p ORDER BY id", new { p = $"user:{targets.AdminUserId}" }),
            ["root secret"] = await RowsAsync("SELECT version, deleted_at, destroyed_at FROM vault_secret_versions WHERE path = @path ORDER BY version", new { path = targets.SecretPath }),
            ["quota overrides on admins"] = await RowsAsync("SELECT scope, subject, quota FROM identity_quotas WHERE subject IN ('admin', @u, @c)", new { u = $"user:{targets.AdminUserId}", c = $"client:{targets.AdminClientId}" }),
            // The admin's media and webhooks may change, but only by media.admin and deliveries.manage (checked from the audit log).
            ["vault user"] = await RowsAsync("SELECT username, email, password_hash, disabled FROM identity_users WHERE id = @id", new { id = targets.VaultUserId }),
            ["vault user's roles"] = await RowsAsync("SELECT role FROM identity_user_roles WHERE user_id = @id ORDER BY role", new { id = targets.VaultUserId }),
            ["granted client"] = await RowsAsync("SELECT name, secret_hash, roles, disabled FROM identity_clients WHERE id = @id", new { id = targets.GrantedClientId }),
            ["holders of the vault role"] = await RowsAsync("SELECT user_id FROM identity_user_roles WHERE role = @role ORDER BY user_id", new { role = VaultRole }),
            ["keys and clients with the vault role"] = await RowsAsync("SELECT id FROM identity_api_keys WHERE roles LIKE @like UNION ALL SELECT id FROM identity_clients WHERE roles LIKE @like ORDER BY 1", new { like = $"%\"{VaultRole}\"%" }),
            ["admin's asset owner"] = await RowsAsync("SELECT owner FROM media_assets WHERE id = @id", new { id = targets.AssetId }),
        };
    }

    /// <summary>
    /// Provenance from the audit log: whatever a principal created or changed (a user, client, API
    /// key, role, vault policy, quota override) holds no permission its actor did not hold.
    /// </summary>
    private async Task AssertNothingExceedsItsCreatorAsync(IReadOnlyList<Principal> principals)
    {
        await using var connection = await Factory.Services.GetRequiredService<IDatabase>().OpenAsync(Ct);
        var byActor = principals.ToDictionary(p => p.Actor, StringComparer.Ordinal);
        var rolePermissions = (await connection.QueryAsync<(string Name, string Permissions)>("SELECT name, permissions FROM identity_roles"))
            .ToDictionary(r => r.Name, r => JsonSerializer.Deserialize<string[]>(r.Permissions)!.ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal);
        IReadOnlySet<string> Of(IEnumerable<string> roles) => roles.SelectMany(r => rolePermissions.GetValueOrDefault(r) ?? []).ToHashSet(StringComparer.Ordinal);

        var entries = await connection.QueryAsync<(string Actor, string Action, string? Target)>(
            "SELECT actor, action, target FROM audit_entries WHERE outcome = 'success' UNION ALL SELECT actor, action, target FROM audit_pending WHERE outcome = 'success'");
        var violations = new List<string>();
        foreach (var (actor, action, target) in entries)
        {
            if (!byActor.TryGetValue(actor, out var principal) || target is null)
            {
                continue;
            }
            var held = principal.Permissions;
            // Registry grants and route claims act on services, not on the client they name: registry.write covers them.
            if (action.StartsWith("registry.", StringComparison.Ordinal))
            {
                if (!held.Contains("registry.write") && !held.Contains("registry.register.own"))
                {
                    violations.Add($"{principal.Name} ({actor}) {action} {target}: without registry.write");
                }
                continue;
            }
            // Someone else's media and webhooks: only for the permission that manages everyone's.
            if ((target.StartsWith("media:", StringComparison.Ordinal) && !held.Contains("media.admin"))
                || (target.StartsWith("webhook:", StringComparison.Ordinal) && !held.Contains("deliveries.manage")))
            {
                if (await connection.QuerySingleOrDefaultAsync<string>(
                    "SELECT owner FROM media_assets WHERE id = @id UNION ALL SELECT owner FROM delivery_webhooks WHERE id = @id", new { id = target.Split(':', 2)[1] }) is { } owner && owner != actor)
                {
                    violations.Add($"{principal.Name} ({actor}) {action} {target}: changed what belongs to {owner}");
                }
                continue;
            }
            IReadOnlySet<string>? reached = null;
            var (kind, id) = (target.Split(':', 2)[0], target.Split(':', 2).ElementAtOrDefault(1) ?? "");
            switch (kind)
            {
                case "user":
                    reached = Of(await connection.QueryAsync<string>("SELECT role FROM identity_user_roles WHERE user_id = @id", new { id }));
                    break;
                case "client":
                    reached = Of(JsonSerializer.Deserialize<string[]>(await connection.QuerySingleOrDefaultAsync<string>("SELECT roles FROM identity_clients WHERE id = @id", new { id }) ?? "[]")!);
                    break;
                case "apikey":
                    reached = Of(JsonSerializer.Deserialize<string[]>(await connection.QuerySingleOrDefaultAsync<string>("SELECT roles FROM identity_api_keys WHERE id = @id", new { id }) ?? "[]")!);
                    break;
                case "role":
                    reached = rolePermissions.GetValueOrDefault(id) ?? new HashSet<string>();
                    break;
                case "secret_policy" when !held.Contains("vault.admin"):
                    // Nobody here holds a vault policy of its own, so without vault.admin there was nothing to hand out.
                    violations.Add($"{principal.Name} ({actor}) {action} {target}: granted vault access it did not hold");
                    continue;
                case "principal":
                    var subject = id.Split(':', 2);
                    reached = subject[0] == "user"
                        ? Of(await connection.QueryAsync<string>("SELECT role FROM identity_user_roles WHERE user_id = @id", new { id = subject[1] }))
                        : Of(JsonSerializer.Deserialize<string[]>(await connection.QuerySingleOrDefaultAsync<string>("SELECT roles FROM identity_clients WHERE id = @id", new { id = subject[1] }) ?? "[]")!);
                    break;
            }
            if (reached is not null && !held.Contains("*") && (reached.Contains("*") || reached.Except(held).Any()))
            {
                violations.Add($"{principal.Name} ({actor}) {action} {target}: it holds {string.Join(",", reached.Except(held))} beyond its actor");
            }
        }
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }
}

/// <summary>The same sweep on PostgreSQL.</summary>
public sealed class PostgresEscalationClosureTests : EscalationClosureTests
{
    public override ValueTask InitializeAsync()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"{PostgresFundamentFactory.Variable} is not set");
        return base.InitializeAsync();
    }

    protected override FundamentFactory CreateFactory(IEnumerable<KeyValuePair<string, string>> settings) => new PostgresFundamentFactory { Extra = settings };
}
