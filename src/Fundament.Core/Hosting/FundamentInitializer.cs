using Fundament.Core.Keys;
using Microsoft.Extensions.Hosting;

namespace Fundament.Core.Hosting;

/// <summary>
/// Brings the store up to date before anything else starts: loads the master key (so a missing or
/// bad key stops the process at once), applies migrations, checks the key against the one the
/// database was sealed with (<see cref="MasterKeyCheck"/>), then runs each module's start-up tasks.
/// Runs in <see cref="IHostedLifecycleService.StartingAsync"/>, ahead of every hosted service and
/// of the web server.
/// </summary>
public sealed class FundamentInitializer(IServiceProvider services) : IHostedLifecycleService
{
    private readonly Lock _gate = new();
    private Task? _run;

    /// <summary>
    /// Runs the start-up work once; later calls share the first's outcome. <c>Program</c> calls it
    /// before the host starts, so a <see cref="StartupException"/> (a wrong master key, a schema
    /// from a newer binary) ends the process with exit code 2 and one line, not the host's stack
    /// trace; the host's own call is then a no-op.
    /// </summary>
    public Task InitializeAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return _run ??= RunAsync(cancellationToken);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => InitializeAsync(cancellationToken);

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        _ = services.GetRequiredService<MasterKeyRing>();
        await services.GetRequiredService<MigrationRunner>().RunAsync(cancellationToken);
        await services.GetRequiredService<MasterKeyCheck>().RunAsync(cancellationToken);
        foreach (var task in services.GetServices<IStartupTask>().OrderBy(t => t.Order))
        {
            await task.RunAsync(cancellationToken);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
