using Fundament.Registry.Instances;
using Fundament.Registry.Routes;

namespace Fundament.Registry;

/// <summary>The registry as the gateway reads it: instances and route ownership, with a blocking wait for changes.</summary>
internal sealed class ServiceDirectory(RegistryStore store, RouteClaimStore claims, TimeProvider time) : IRoutingTableSource
{
    public async Task<RoutingTable> GetAsync(long? knownIndex, TimeSpan wait, CancellationToken cancellationToken)
    {
        if (knownIndex is { } known)
        {
            await Fundament.Core.Watch.BlockingQuery.WaitAsync(store.GlobalIndexAsync, known, wait, store.Changes, time, cancellationToken);
        }
        var index = await store.GlobalIndexAsync(cancellationToken);
        var instances = (await store.AllAsync(cancellationToken))
            .Select(i => new RoutableInstance(i.Id, i.Service, i.Address, (int)i.Port, i.Scheme, i.Status, i.Version, i.Routes))
            .ToList();
        return new RoutingTable(index, instances, await claims.OwnershipAsync(cancellationToken));
    }
}
