using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Fundament.Tests.Gateway;

/// <summary>
/// A real upstream on loopback that answers with its name and the path and headers it received.
/// Paths containing <c>/slow</c> answer after 3 s; the status argument sets every answer's status.
/// </summary>
public sealed class EchoService : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoService(WebApplication app) => _app = app;

    public int Port { get; private set; }

    public int Requests;

    public static async Task<EchoService> StartAsync(int port = 0, int status = 200, string name = "echo")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var echo = new EchoService(app);
        app.Run(async context =>
        {
            Interlocked.Increment(ref echo.Requests);
            if (context.Request.Path.Value?.Contains("/slow", StringComparison.Ordinal) == true)
            {
                await Task.Delay(3000, context.RequestAborted);
            }
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(JsonSerializer.Serialize(new
            {
                instance = name,
                method = context.Request.Method,
                path = context.Request.Path.Value + context.Request.QueryString.Value,
                headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()),
            }));
        });
        await app.StartAsync();
        echo.Port = new Uri(app.Urls.First()).Port;
        return echo;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
