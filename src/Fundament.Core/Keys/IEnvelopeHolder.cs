namespace Fundament.Core.Keys;

/// <summary>
/// A module that stores envelopes (<see cref="EnvelopeEncryption"/>) implements this so a master
/// key rotation can re-wrap everything it holds, online and in batches.
/// </summary>
public interface IEnvelopeHolder
{
    /// <summary>Name for reports, e.g. <c>vault secrets</c>.</summary>
    string Name { get; }

    /// <summary>Re-wraps every envelope not yet under the current master key.</summary>
    Task<RewrapResult> RewrapAsync(EnvelopeEncryption encryption, CancellationToken cancellationToken);

    /// <summary>
    /// The master key ids a sample of what it holds was wrapped with (none when it holds nothing),
    /// so the first start of a version with the master key check can tell whether the database was
    /// sealed with a key this node does not have (<see cref="MasterKeyCheck"/>).
    /// </summary>
    Task<IReadOnlyList<string>> SampleKeyIdsAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);
}
