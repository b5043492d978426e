using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Fundament.Tests.Registry;

/// <summary>
/// A real HTTP server on loopback standing in for a registered service: its health endpoint
/// answers with whatever status the test sets, and it counts the checks it receives.
/// </summary>
public sealed class CheckedService : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _checks;

    private CheckedService(WebApplication app) => _app = app;

    public int Status { get; set; } = 200;

    public int Checks => Volatile.Read(ref _checks);

    public int Port { get; private set; }

    public static async Task<CheckedService> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var service = new CheckedService(app);
        app.MapGet("/health/ready", () =>
        {
            Interlocked.Increment(ref service._checks);
            return Results.StatusCode(service.Status);
        });
        await app.StartAsync();
        service.Port = new Uri(app.Urls.First()).Port;
        return service;
    }

    public async Task StopAsync() => await _app.StopAsync();

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
