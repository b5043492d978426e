using System.Text.Json;
using Fundament.Registry.Routes;

namespace Fundament.UnitTests.Registry.Routes;

public sealed class RouteDeclarationTests
{
    private static (IReadOnlyList<RouteDeclaration> Routes, List<(string Field, string Message)> Problems) Parse(string json, bool strict = true)
    {
        var problems = new List<(string Field, string Message)>();
        using var document = JsonDocument.Parse(json);
        return (RouteDeclaration.ParseAll(document.RootElement, problems, strict), problems);
    }

    [Fact]
    public void AFullRoute_ParsesEveryField()
    {
        var (routes, problems) = Parse("""
            [{"path":"/orders/{**rest}","stripPrefix":"/orders","pathPrefix":"/api","auth":"role:clerk","rateLimit":"standard",
              "cors":"shop","timeout":"30s","loadBalancing":"roundrobin","retries":2,"maxBodySize":1048576,
              "requestHeaders":{"X-Tenant":"acme","X-Debug":null},"forwardAuthorization":"none"}]
            """);

        Assert.Empty(problems);
        var route = Assert.Single(routes);
        Assert.Equal("/orders/{**rest}", route.Path);
        Assert.Equal("role:clerk", route.Auth);
        Assert.Equal(TimeSpan.FromSeconds(30), route.Timeout);
        Assert.Equal("roundRobin", route.LoadBalancing);
        Assert.Equal(2, route.Retries);
        Assert.Equal("acme", route.RequestHeaders["X-Tenant"]);
        Assert.Null(route.RequestHeaders["X-Debug"]);
        Assert.Equal(ForwardAuthorization.None, route.ForwardAuthorization);
    }

    [Fact]
    public void ABadRoute_IsLeftOut_WithEveryProblemNamed_AndTheGoodOnesStay()
    {
        var (routes, problems) = Parse("""
            [{"path":"/ok"},
             {"path":"orders","timeout":"forever","auth":"root","colour":"blue"}]
            """);

        Assert.Equal("/ok", Assert.Single(routes).Path);
        Assert.Contains(problems, p => p.Field == "routes[1].path");
        Assert.Contains(problems, p => p.Field == "routes[1].timeout");
        Assert.Contains(problems, p => p.Field == "routes[1].auth");
        Assert.Contains(problems, p => p.Field == "routes[1].colour");
    }

    [Fact]
    public void UnknownFields_AreRefusedAtRegistration_ButReadLeniently()
    {
        Assert.NotEmpty(Parse("""[{"path":"/a","future":1}]""").Problems);

        var (routes, problems) = Parse("""[{"path":"/a","future":1}]""", strict: false);
        Assert.Empty(problems);
        Assert.Single(routes);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("\"/orders\"")]
    public void NotAnArray_IsOneProblem(string json)
    {
        var (routes, problems) = Parse(json);

        Assert.Empty(routes);
        Assert.Equal("routes", Assert.Single(problems).Field);
    }

    [Fact]
    public void MoreThanTheLimit_IsRefusedWhole()
    {
        var json = "[" + string.Join(",", Enumerable.Range(0, RouteDeclaration.MaxRoutes + 1).Select(i => $$"""{"path":"/r{{i}}"}""")) + "]";

        var (routes, problems) = Parse(json);

        Assert.Empty(routes);
        Assert.Single(problems);
    }

    [Fact]
    public void GatewayHeaders_CannotBeSetByARoute()
    {
        var (routes, problems) = Parse("""[{"path":"/a","requestHeaders":{"X-Fundament-User":"admin"}}]""");

        Assert.Empty(routes);
        Assert.Contains(problems, p => p.Field.StartsWith("routes[0].requestHeaders", StringComparison.Ordinal));
    }
}
