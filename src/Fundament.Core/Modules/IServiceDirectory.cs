namespace Fundament.Modules;

/// <summary>What the registry tells other modules (alert rules, the gateway) about services.</summary>
public interface IServiceDirectory
{
    /// <summary>Services with instance counts by status.</summary>
    Task<IReadOnlyList<ServiceHealth>> ServicesAsync(CancellationToken cancellationToken);

    /// <summary>Instances currently critical, with when they became critical.</summary>
    Task<IReadOnlyList<CriticalInstance>> CriticalInstancesAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Every instance with its declared gateway routes, and the registry's change index; with
    /// <paramref name="knownIndex"/> it first waits (up to <paramref name="wait"/>) for a change past it.
    /// </summary>
    Task<(long Index, IReadOnlyList<RoutableInstance> Instances)> RoutableInstancesAsync(long? knownIndex, TimeSpan wait, CancellationToken cancellationToken);
}

/// <summary>An instance as the gateway needs it; <see cref="RoutesJson"/> is the array it registered.</summary>
public sealed record RoutableInstance(string InstanceId, string Service, string Address, int Port, string Scheme, string Status, string? Version, string RoutesJson);

public sealed record ServiceHealth(string Service, int Passing, int Warning, int Critical, int Total);

public sealed record CriticalInstance(string InstanceId, string Service, DateTimeOffset CriticalSince, string? Output);
