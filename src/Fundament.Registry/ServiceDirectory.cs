using Fundament.Modules;
using Fundament.Registry.Instances;
using Fundament.Registry.Routes;

namespace Fundament.Registry;

internal sealed class ServiceDirectory(RegistryStore store, RouteClaimStore claims, TimeProvider time) : IServiceDirectory, IRoutingTableSource
{
    public async Task<RoutingTable> GetAsync(long? knownIndex, TimeSpan wait, CancellationToken cancellationToken)
    {
        if (knownIndex is { } known)
        {
            await Fundament.Watch.BlockingQuery.WaitAsync(store.GlobalIndexAsync, known, wait, store.Changes, time, cancellationToken);
        }
        var index = await store.GlobalIndexAsync(cancellationToken);
        var instances = (await store.AllAsync(cancellationToken))
            .Select(i => new RoutableInstance(i.Id, i.Service, i.Address, (int)i.Port, i.Scheme, i.Status, i.Version, i.Routes))
            .ToList();
        return new RoutingTable(index, instances, await claims.OwnershipAsync(cancellationToken));
    }

    public async Task<IReadOnlyList<ServiceHealth>> ServicesAsync(CancellationToken cancellationToken) =>
        (await store.ServicesAsync(cancellationToken)).Select(s => new ServiceHealth(s.Service, s.Passing, s.Warning, s.Critical, s.Total)).ToList();

    public async Task<IReadOnlyList<CriticalInstance>> CriticalInstancesAsync(CancellationToken cancellationToken) =>
        (await store.AllAsync(cancellationToken))
            .Where(i => i.Status == InstanceStatus.Critical && i.CriticalSince is not null)
            .Select(i => new CriticalInstance(i.Id, i.Service, DateTimeOffset.FromUnixTimeMilliseconds(i.CriticalSince!.Value), i.Output))
            .ToList();
}
