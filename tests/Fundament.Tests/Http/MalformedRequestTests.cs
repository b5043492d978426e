using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Http;

/// <summary>
/// Hundreds of malformed requests across every endpoint, with and without credentials: each must
/// get a 4xx (or success) with a problem-details body, never a 5xx.
/// </summary>
public sealed class MalformedRequestTests(SqliteFundamentFactory factory) : IClassFixture<SqliteFundamentFactory>
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static readonly string[] Bodies =
    [
        "",
        "{",
        "[]",
        "null",
        "123",
        "\"text\"",
        "{\"username\":{},\"password\":[]}",
        "{\"name\":12,\"roles\":\"admin\",\"permissions\":{\"a\":1}}",
        "{\"roles\":[1,2,null],\"disabled\":\"yes\",\"expiresAt\":\"soon\"}",
        "{\"refresh_token\":false,\"token\":1e999}",
        "{\"unknownProperty\":true}",
        "{\"email\":\"not-an-address\",\"password\":\"x\"}",
        new string('[', 5000) + new string(']', 5000),
        "{\"name\":\"" + new string('a', 100_000) + "\"}",
        "{\"username\":\"\\ud800\",\"password\":\"\\u0000\"}",
    ];

    private static readonly string[] Ids = ["x", new string('9', 3000), "%2500", "..%2F..%2Fetc%2Fpasswd", "%E2%98%83", "'%20OR%201=1--"];

    private static readonly string[] Queries =
    [
        "?page=-1&pageSize=0",
        "?page=abc",
        "?pageSize=99999999999999999999",
        "?limit=0&before=-5",
        "?from=notadate&to=2026-13-45",
        "?q=" + new string('%', 10) + "&action=%25%25",
    ];

    private static readonly string[] Authorizations =
    [
        "Bearer ",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
        "ApiKey ",
        "ApiKey fk_" + new string('z', 500),
        "Basic !!!",
        "Digest nonsense",
    ];

    [Fact]
    public async Task MalformedRequests_NeverCauseA5xx()
    {
        var admin = (await factory.LoginAsync("admin", FundamentFactory.AdminPassword))["access_token"]!.GetValue<string>();
        var endpoints = Endpoints().ToList();
        var sent = 0;
        var failures = new List<string>();

        async Task SendAsync(string method, string path, HttpContent? content, string? authorization)
        {
            using var client = factory.CreateClient();
            using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = content };
            if (authorization is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", authorization);
            }
            var response = await client.SendAsync(request, _ct);
            sent++;
            var status = (int)response.StatusCode;
            var type = response.Content.Headers.ContentType?.MediaType;
            if (status >= 500)
            {
                failures.Add($"{method} {path} -> {status}: {await response.Content.ReadAsStringAsync(_ct)}");
            }
            else if (status >= 400 && type != "application/problem+json")
            {
                failures.Add($"{method} {path} -> {status} with content type {type}");
            }
        }

        foreach (var (method, template) in endpoints)
        {
            var hasBody = method is "POST" or "PUT" or "PATCH";
            foreach (var auth in new[] { "Bearer " + admin, null })
            {
                foreach (var id in Ids)
                {
                    var path = EndpointCatalog.Fill(template, id);
                    if (hasBody)
                    {
                        foreach (var body in Bodies)
                        {
                            await SendAsync(method, path, new StringContent(body, Encoding.UTF8, "application/json"), auth);
                        }
                        await SendAsync(method, path, new ByteArrayContent([0xff, 0xfe, 0x00, 0xc3]) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } }, auth);
                        await SendAsync(method, path, new StringContent("a=b&c", Encoding.UTF8, "text/plain"), auth);
                        await SendAsync(method, path, new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = id }), auth);
                    }
                    else
                    {
                        foreach (var query in Queries)
                        {
                            await SendAsync(method, path + query, null, auth);
                        }
                    }
                    if (!template.Contains('{', StringComparison.Ordinal))
                    {
                        break;
                    }
                }
            }
            foreach (var authorization in Authorizations)
            {
                await SendAsync(method, EndpointCatalog.Fill(template, "x"), hasBody ? new StringContent("{}", Encoding.UTF8, "application/json") : null, authorization);
            }
        }

        Assert.True(sent > 300, $"only {sent} requests sent");
        Assert.True(failures.Count == 0, $"{failures.Count} of {sent} requests misbehaved:\n" + string.Join("\n", failures.Take(20)));
    }

    [Fact]
    public async Task OversizedBody_Is413_UnknownRoute404_WrongMethod405()
    {
        using var client = factory.CreateClient();
        var big = await client.PostAsync("/api/v1/auth/login", new StringContent(new string('x', 2 * 1024 * 1024), Encoding.UTF8, "application/json"), _ct);
        await big.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge);
        await (await client.GetAsync("/api/v1/no-such-thing", _ct)).AssertProblemAsync(HttpStatusCode.NotFound);
        await (await client.DeleteAsync("/api/v1/auth/login", _ct)).AssertProblemAsync(HttpStatusCode.MethodNotAllowed);
    }

    private IEnumerable<(string Method, string Path)> Endpoints() =>
        EndpointCatalog.All(factory).Where(e => !e.Template.StartsWith("/openapi", StringComparison.Ordinal)).Select(e => (e.Method, e.Template));
}
