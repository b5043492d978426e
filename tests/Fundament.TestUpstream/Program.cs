// Usage: dotnet Fundament.TestUpstream.dll --urls http://127.0.0.1:PORT --name NAME
// Answers every request with {"instance":NAME,"path":...}; prints "ready" once listening.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
var name = app.Configuration["name"] ?? "upstream";
app.Run(context =>
{
    context.Response.ContentType = "application/json";
    return context.Response.WriteAsync($"{{\"instance\":\"{name}\",\"path\":\"{context.Request.Path}\"}}");
});
await app.StartAsync();
Console.WriteLine("ready");
await app.WaitForShutdownAsync();
