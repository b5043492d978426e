using System.Globalization;

namespace Fundament.Client.Events;

/// <summary>What an append expects of the stream: any state, no stream yet, an existing stream, or an exact version.</summary>
public readonly record struct ExpectedVersion
{
    private readonly object _value;

    private ExpectedVersion(object value) => _value = value;

    /// <summary>Append whatever the stream's state.</summary>
    public static ExpectedVersion Any { get; } = new("any");

    /// <summary>Append only if the stream has no events yet.</summary>
    public static ExpectedVersion NoStream { get; } = new("no_stream");

    /// <summary>Append only if the stream has events.</summary>
    public static ExpectedVersion Exists { get; } = new("exists");

    /// <summary>Append only if the stream is at <paramref name="version"/> (its last event's version; the first event is 0).</summary>
    public static ExpectedVersion Exactly(long version) => version >= 0
        ? new ExpectedVersion(version)
        : throw new ArgumentOutOfRangeException(nameof(version), version, "A stream version is 0 or more.");

    /// <summary>The value sent as <c>expectedVersion</c>.</summary>
    internal object Wire => _value ?? "any";

    /// <inheritdoc/>
    public override string ToString() => Convert.ToString(Wire, CultureInfo.InvariantCulture)!;
}
