// Bare YARP: one catch-all route to one destination. Usage: BareYarp --urls http://127.0.0.1:5308 --backend http://127.0.0.1:5301
using Yarp.ReverseProxy.Configuration;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var backend = builder.Configuration["backend"] ?? throw new InvalidOperationException("--backend is required");
builder.Services.AddReverseProxy().LoadFromMemory(
    [new RouteConfig { RouteId = "all", ClusterId = "backend", Match = new RouteMatch { Path = "{**rest}" } }],
    [new ClusterConfig { ClusterId = "backend", Destinations = new Dictionary<string, DestinationConfig> { ["backend"] = new() { Address = backend } } }]);
var app = builder.Build();
app.MapReverseProxy();
app.Run();
