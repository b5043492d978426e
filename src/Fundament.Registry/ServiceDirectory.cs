using Fundament.Modules;
using Fundament.Registry.Instances;

namespace Fundament.Registry;

internal sealed class ServiceDirectory(RegistryStore store) : IServiceDirectory
{
    public async Task<IReadOnlyList<ServiceHealth>> ServicesAsync(CancellationToken cancellationToken) =>
        (await store.ServicesAsync(cancellationToken)).Select(s => new ServiceHealth(s.Service, s.Passing, s.Warning, s.Critical, s.Total)).ToList();

    public async Task<IReadOnlyList<CriticalInstance>> CriticalInstancesAsync(CancellationToken cancellationToken) =>
        (await store.AllAsync(cancellationToken))
            .Where(i => i.Status == InstanceStatus.Critical && i.CriticalSince is not null)
            .Select(i => new CriticalInstance(i.Id, i.Service, DateTimeOffset.FromUnixTimeMilliseconds(i.CriticalSince!.Value), i.Output))
            .ToList();
}
