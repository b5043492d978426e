using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Fundament.Tests.Gateway;

/// <summary>A real upstream on loopback that answers with the path and headers it received.</summary>
public sealed class EchoService : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EchoService(WebApplication app) => _app = app;

    public int Port { get; private set; }

    public int Requests;

    public static async Task<EchoService> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var echo = new EchoService(app);
        app.Run(async context =>
        {
            Interlocked.Increment(ref echo.Requests);
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(JsonSerializer.Serialize(new
            {
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
