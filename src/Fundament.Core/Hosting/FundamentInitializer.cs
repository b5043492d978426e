using Fundament.Core.Keys;
using Microsoft.Extensions.Hosting;

namespace Fundament.Core.Hosting;

/// <summary>
/// Brings the store up to date before anything else starts: loads the master key (so a missing or
/// bad key stops the process at once), applies migrations, then runs each module's start-up tasks.
/// Runs in <see cref="IHostedLifecycleService.StartingAsync"/>, ahead of every hosted service and
/// of the web server.
/// </summary>
public sealed class FundamentInitializer(IServiceProvider services) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        _ = services.GetRequiredService<MasterKeyRing>();
        await services.GetRequiredService<MigrationRunner>().RunAsync(cancellationToken);
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
