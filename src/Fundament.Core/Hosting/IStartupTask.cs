namespace Fundament.Core.Hosting;

/// <summary>
/// Work a module must finish before the process serves requests (seeding, first keys). Runs after
/// every migration, in <see cref="Order"/>, once per process start; must be safe when several
/// replicas start at once.
/// </summary>
public interface IStartupTask
{
    int Order { get; }

    Task RunAsync(CancellationToken cancellationToken);
}
