namespace Fundament.Modules;

/// <summary>What the registry tells other modules (alert rules) about services.</summary>
public interface IServiceDirectory
{
    /// <summary>Services with instance counts by status.</summary>
    Task<IReadOnlyList<ServiceHealth>> ServicesAsync(CancellationToken cancellationToken);

    /// <summary>Instances currently critical, with when they became critical.</summary>
    Task<IReadOnlyList<CriticalInstance>> CriticalInstancesAsync(CancellationToken cancellationToken);
}

public sealed record ServiceHealth(string Service, int Passing, int Warning, int Critical, int Total);

public sealed record CriticalInstance(string InstanceId, string Service, DateTimeOffset CriticalSince, string? Output);
