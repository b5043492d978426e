using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Fundament.Core.Http;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Http;

/// <summary>
/// Every list endpoint caps its page: a page size over the maximum, or of zero, is a 400 naming the
/// parameter. Generated from the endpoint table, so a list added later fails here until it is capped
/// or listed below as exempt, with the reason.
/// </summary>
public sealed class PagingTests(SqliteFundamentFactory factory) : IClassFixture<SqliteFundamentFactory>
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    /// <summary>GET endpoints that are not lists, or whose answer is bounded by construction.</summary>
    private static readonly Dictionary<string, string> Exempt = new(StringComparer.Ordinal)
    {
        ["/"] = "the service's name and version, one document",
        ["/health/live"] = "a health report",
        ["/health/ready"] = "a health report: one entry per check",
        ["/metrics"] = "Prometheus text, one series per instrument",
        ["/.well-known/openid-configuration"] = "the discovery document",
        ["/.well-known/jwks.json"] = "the signing keys: the current one and those retired within a token lifetime",
        ["/api/v1/me"] = "the caller",
        ["/api/v1/me/quotas"] = "one row per quota type",
        ["/api/v1/roles/permissions"] = "the static list of permissions",
        ["/api/v1/jobs/queues"] = "one row per registered job type",
        ["/api/v1/media/stats"] = "aggregates by type and state",
        ["/api/v1/config/resolved"] = "one service's overlay, a document",
        ["/api/v1/audit/verify"] = "the result of a verification, not a list",
        ["/api/v1/me/mfa"] = "the caller's second factors, one document",
        ["/api/v1/registry/instances/{id}/history"] = "the instance's last 500 status changes; older ones are trimmed",
        ["/api/v1/cluster/nodes"] = "the cluster's live nodes and at most the 500 most recently gone; older ones are forgotten",
    };

    /// <summary>Lists whose route has parameters, with values that reach the list (an unknown name is an empty list, not a 404).</summary>
    private static readonly Dictionary<string, string> Filled = new(StringComparer.Ordinal)
    {
        ["/api/v1/registry/services/{name}/instances"] = "/api/v1/registry/services/paging-probe/instances",
        ["/api/v1/webhooks/{id}/deliveries"] = "/api/v1/webhooks/no-such-hook/deliveries",
    };

    /// <summary>Lists that name their page size <c>pageSize</c> (page-numbered) rather than <c>limit</c>.</summary>
    private static readonly string[] PageSizeNames = [Paging.LimitParameter, "pageSize"];

    [Fact]
    public async Task EveryList_RefusesAPageOverTheMaximum_OrOfZero()
    {
        using var admin = await factory.AdminAsync();
        var gets = EndpointCatalog.All(factory).Where(e => e.Method == "GET").Select(e => e.Template).Distinct(StringComparer.Ordinal).ToList();
        Assert.All(Exempt.Keys.Concat(Filled.Keys), template => Assert.Contains(template, gets));

        var failures = new List<string>();
        var checkedLists = 0;
        foreach (var template in gets.Order(StringComparer.Ordinal))
        {
            if (Exempt.ContainsKey(template))
            {
                continue;
            }
            var path = Filled.GetValueOrDefault(template) ?? template;
            if (path.Contains('{', StringComparison.Ordinal))
            {
                // One resource by id or name, or a document (openapi): nothing to fill a list from.
                continue;
            }
            checkedLists++;
            foreach (var size in new[] { 100_000, 0 })
            {
                var url = $"{path}?limit={size}&pageSize={size}";
                var response = await admin.GetAsync(url, _ct);
                var body = await response.Content.ReadAsStringAsync(_ct);
                if (response.StatusCode != HttpStatusCode.BadRequest || response.Content.Headers.ContentType?.MediaType != "application/problem+json")
                {
                    failures.Add($"GET {url}: {(int)response.StatusCode}, expected a 400 problem (cap the list, or add it to {nameof(Exempt)} with the reason)");
                    continue;
                }
                var errors = JsonNode.Parse(body)!["errors"]?.AsObject();
                if (errors is null || !errors.Any(e => PageSizeNames.Contains(e.Key, StringComparer.Ordinal)))
                {
                    failures.Add($"GET {url}: 400 without an error naming limit or pageSize: {body}");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(checkedLists >= 25, $"only {checkedLists} lists were checked");
    }
}

/// <summary>
/// Paging through representative lists: full pages with a Link rel=next, every item once, and a
/// last page without a Link. Run on SQLite and PostgreSQL.
/// </summary>
public abstract partial class ListPagingTests(FundamentFactory factory)
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private const int Limit = 3;

    private const int Created = Limit + 2;

    [GeneratedRegex("<([^>]*)>;\\s*rel=\"next\"")]
    private static partial Regex NextLink();

    private static string? Next(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Link", out var values) && values.Select(v => NextLink().Match(v)).FirstOrDefault(m => m.Success) is { } match
            ? match.Groups[1].Value
            : null;

    /// <summary>Every page from <paramref name="url"/> on, following the Link headers, and the link each page carried.</summary>
    private async Task<List<(List<JsonNode> Items, string? Next)>> PagesAsync(HttpClient client, string url, Func<JsonNode, JsonArray>? items = null)
    {
        var pages = new List<(List<JsonNode>, string?)>();
        for (string? next = url; next is not null;)
        {
            var response = await client.GetAsync(next, _ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {next}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(_ct)}");
            var body = await response.JsonAsync();
            next = Next(response);
            pages.Add(((items?.Invoke(body) ?? body.AsArray()).Select(i => i!).ToList(), next));
            Assert.True(pages.Count < 200, "paging does not end");
        }
        return pages;
    }

    /// <summary>Every page but the last is full and links on; the last has no link; no item twice.</summary>
    private static List<string> AssertWellPaged(List<(List<JsonNode> Items, string? Next)> pages, Func<JsonNode, string> key, int limit = Limit)
    {
        for (var i = 0; i < pages.Count - 1; i++)
        {
            Assert.Equal(limit, pages[i].Items.Count);
            Assert.NotNull(pages[i].Next);
            Assert.Contains($"limit={limit}", pages[i].Next, StringComparison.Ordinal);
        }
        Assert.Null(pages[^1].Next);
        Assert.InRange(pages[^1].Items.Count, 0, limit);
        var keys = pages.SelectMany(p => p.Items).Select(key).ToList();
        Assert.Equal(keys.Count, keys.Distinct(StringComparer.Ordinal).Count());
        return keys;
    }

    private static string Field(JsonNode node, string name) => node[name]!.GetValue<string>();

    [Fact]
    public async Task Clients_PageByName_EveryClientOnce()
    {
        using var admin = await factory.AdminAsync();
        var prefix = Api.UniqueName("pg");
        for (var i = 0; i < Created; i++)
        {
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/v1/clients", new { name = $"{prefix}-{i}" }, _ct)).StatusCode);
        }
        var first = await admin.GetAsync($"/api/v1/clients?limit={Limit}", _ct);
        Assert.Equal(Limit, (await first.JsonAsync()).AsArray().Count);
        Assert.NotNull(Next(first));

        var pages = await PagesAsync(admin, $"/api/v1/clients?limit={Limit}");
        var ids = AssertWellPaged(pages, c => Field(c, "clientId"));
        var all = (await (await admin.GetAsync($"/api/v1/clients?limit={Paging.MaxLimit}", _ct)).JsonAsync()).AsArray().Select(c => Field(c!, "clientId")).ToList();
        Assert.Equal(all, ids);
        var names = pages.SelectMany(p => p.Items).Select(c => Field(c, "name")).ToList();
        Assert.Equal(Created, names.Count(n => n.StartsWith(prefix + "-", StringComparison.Ordinal)));

        await (await admin.GetAsync("/api/v1/clients?after=" + new string('a', Paging.MaxAfterLength + 1), _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await admin.GetAsync($"/api/v1/clients?limit={Paging.MaxLimit + 1}", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync($"/api/v1/clients?limit={Paging.MaxLimit}&after={Uri.EscapeDataString(new string('z', Paging.MaxAfterLength))}", _ct)).StatusCode);
    }

    [Fact]
    public async Task ApiKeys_PageNewestFirst_RevokedOnesIncluded()
    {
        var (client, _, _) = await factory.UserClientAsync();
        using var user = client;
        var created = new List<string>();
        for (var i = 0; i < Created; i++)
        {
            var key = await (await user.PostAsJsonAsync("/api/v1/api-keys", new { name = $"key-{i}" }, _ct)).JsonAsync();
            created.Add(Field(key, "id"));
        }
        Assert.Equal(HttpStatusCode.NoContent, (await user.DeleteAsync($"/api/v1/api-keys/{created[1]}", _ct)).StatusCode);

        var pages = await PagesAsync(user, $"/api/v1/api-keys?limit={Limit}");
        Assert.Equal([Limit, Created - Limit], pages.Select(p => p.Items.Count));
        var ids = AssertWellPaged(pages, k => Field(k, "id"));
        // Newest first: the ids are time-ordered (UUIDv7).
        Assert.Equal(created.Order(StringComparer.Ordinal), ids.Order(StringComparer.Ordinal));
        Assert.Equal(ids.OrderDescending(StringComparer.Ordinal), ids);
    }

    [Fact]
    public async Task Secrets_PageByPath_AndSkipWhatTheCallerMayNotList()
    {
        using var admin = await factory.AdminAsync();
        var root = Api.UniqueName("pg");
        var visible = Enumerable.Range(0, Created).Select(i => $"{root}/v/s{i}").ToList();
        // Listed before the visible ones, so a page of the restricted caller has to read past them.
        var hidden = Enumerable.Range(0, 3 * Created).Select(i => $"{root}/h/s{i:D2}").ToList();
        foreach (var path in visible.Concat(hidden))
        {
            (await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = "x" }, _ct)).EnsureSuccessStatusCode();
        }

        static JsonArray Paths(JsonNode body) => body["paths"]!.AsArray();
        var pages = await PagesAsync(admin, $"/api/v1/secrets?prefix={root}/&limit={Limit}", Paths);
        var paths = AssertWellPaged(pages, p => p.GetValue<string>());
        Assert.Equal(visible.Concat(hidden).Order(StringComparer.Ordinal), paths.Order(StringComparer.Ordinal));
        var single = (await (await admin.GetAsync($"/api/v1/secrets?prefix={root}/&limit={Paging.MaxLimit}", _ct)).JsonAsync())["paths"]!.AsArray().Select(p => p!.GetValue<string>());
        Assert.Equal(single, paths);
        Assert.All(pages.Where(p => p.Next is not null), p => Assert.Contains($"prefix={root}", p.Next, StringComparison.Ordinal));

        var (client, userId, _) = await factory.UserClientAsync();
        using var user = client;
        (await admin.PostAsJsonAsync("/api/v1/secret-policies", new { principal = $"user:{userId}", pathPrefix = $"{root}/v", capabilities = new[] { "list" } }, _ct)).EnsureSuccessStatusCode();
        var restricted = await PagesAsync(user, $"/api/v1/secrets?prefix={root}/&limit={Limit}", Paths);
        Assert.Equal([Limit, Created - Limit], restricted.Select(p => p.Items.Count));
        Assert.Equal(visible, AssertWellPaged(restricted, p => p.GetValue<string>()).Order(StringComparer.Ordinal));
        // The cursor is a path the caller may list, never one it may not.
        Assert.DoesNotContain("%2Fh%2F", restricted[0].Next!, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Instances_PageById_WithFiltersInTheQuery_AndAfterAWatch()
    {
        using var admin = await factory.AdminAsync();
        var service = "pg-" + Guid.NewGuid().ToString("N")[..10];
        async Task RegisterAsync(int i)
        {
            var response = await admin.PostAsJsonAsync("/api/v1/registry/instances",
                new { service, instanceId = $"{service}-{i}", address = "10.9.0." + (i + 1), port = 8080, tags = i % 2 == 0 ? new[] { "blue", "x" } : ["green"] }, _ct);
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_ct));
        }
        for (var i = 0; i < Created; i++)
        {
            await RegisterAsync(i);
        }

        var pages = await PagesAsync(admin, $"/api/v1/registry/services/{service}/instances?limit={Limit}");
        Assert.Equal([Limit, Created - Limit], pages.Select(p => p.Items.Count));
        Assert.Equal(Enumerable.Range(0, Created).Select(i => $"{service}-{i}"), AssertWellPaged(pages, i => Field(i, "instanceId")));

        // The tag filter runs in the query: pages of blue instances only, still full.
        var blue = await PagesAsync(admin, $"/api/v1/registry/services/{service}/instances?tag=blue&healthy=true&limit=2");
        Assert.Equal([$"{service}-0", $"{service}-2", $"{service}-4"], AssertWellPaged(blue, i => Field(i, "instanceId"), limit: 2));
        Assert.Contains("tag=blue", blue[0].Next!, StringComparison.Ordinal);

        // A watch answers once the service changes, with its first page; the next link reads on at once.
        var first = await admin.GetAsync($"/api/v1/registry/services/{service}/instances?limit={Limit}", _ct);
        var index = first.Headers.GetValues("X-Fundament-Index").Single();
        var watch = admin.GetAsync($"/api/v1/registry/services/{service}/instances?index={index}&wait=5m&limit={Limit}", _ct);
        await Task.Delay(200, _ct);
        Assert.False(watch.IsCompleted);
        await RegisterAsync(Created);
        var answer = await watch;
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(Limit, (await answer.JsonAsync()).AsArray().Count);
        var next = Next(answer);
        Assert.NotNull(next);
        Assert.DoesNotContain("index=", next, StringComparison.Ordinal);
        Assert.DoesNotContain("wait=", next, StringComparison.Ordinal);
        var rest = await PagesAsync(admin, next);
        Assert.Equal([Created + 1 - Limit], rest.Select(p => p.Items.Count));

        // The services list pages by name too.
        var services = await PagesAsync(admin, "/api/v1/registry/services?limit=1");
        var names = AssertWellPaged(services, s => Field(s, "service"), limit: 1);
        Assert.Contains(service, names);
    }

    [Fact]
    public async Task RouteClaims_PageFromTheFixedPrefixesIntoTheStoredOnes()
    {
        using var admin = await factory.AdminAsync();
        var service = "pg-" + Guid.NewGuid().ToString("N")[..10];
        for (var i = 0; i < Created; i++)
        {
            var response = await admin.PostAsJsonAsync("/api/v1/registry/route-claims", new { service, pathPrefix = $"/{service}x{i}" }, _ct);
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_ct));
        }
        static string Key(JsonNode c) => $"{Field(c, "source")} {Field(c, "pathPrefix")} {Field(c, "service")}";

        var mine = await PagesAsync(admin, $"/api/v1/registry/route-claims?service={service}&limit={Limit}");
        var keys = AssertWellPaged(mine, Key);
        Assert.Equal(Created, keys.Count(k => k.StartsWith("claim ", StringComparison.Ordinal)));
        Assert.All(mine.Where(p => p.Next is not null), p => Assert.Contains($"service={service}", p.Next, StringComparison.Ordinal));

        // Across the reserved prefixes (listed first) and the stored claims, with pages that straddle both.
        var everything = await PagesAsync(admin, $"/api/v1/registry/route-claims?limit={Limit}");
        var all = AssertWellPaged(everything, Key);
        var single = (await (await admin.GetAsync($"/api/v1/registry/route-claims?limit={Paging.MaxLimit}", _ct)).JsonAsync()).AsArray().Select(c => Key(c!)).ToList();
        Assert.Equal(single, all);
        Assert.Contains("reserved /api fundament", all);
        Assert.True(all.IndexOf("reserved /api fundament") < all.IndexOf($"claim /{service}x0 {service}"));
    }

    [Fact]
    public async Task Webhooks_PageById_TheCallersOwn()
    {
        var (client, _, _) = await factory.UserClientAsync();
        using var user = client;
        var created = new List<string>();
        for (var i = 0; i < Created; i++)
        {
            var response = await user.PostAsJsonAsync("/api/v1/webhooks", new { url = $"https://hooks.example.test/paging/{i}", events = new[] { "media.ready" } }, _ct);
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync(_ct));
            created.Add(Field(await response.JsonAsync(), "id"));
        }
        var pages = await PagesAsync(user, $"/api/v1/webhooks?limit={Limit}");
        Assert.Equal([Limit, Created - Limit], pages.Select(p => p.Items.Count));
        Assert.Equal(created.Order(StringComparer.Ordinal), AssertWellPaged(pages, w => Field(w, "id")).Order(StringComparer.Ordinal));

        await (await user.GetAsync($"/api/v1/webhooks/{created[0]}/deliveries?limit=0", _ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal(HttpStatusCode.OK, (await user.GetAsync($"/api/v1/webhooks/{created[0]}/deliveries?limit={Paging.MaxLimit}", _ct)).StatusCode);
    }
}

public sealed class SqliteListPagingTests(SqliteFundamentFactory factory) : ListPagingTests(factory), IClassFixture<SqliteFundamentFactory>;

public sealed class PostgresListPagingTests : ListPagingTests, IClassFixture<PostgresFundamentFactory>
{
    public PostgresListPagingTests(PostgresFundamentFactory factory) : base(factory) =>
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
}
