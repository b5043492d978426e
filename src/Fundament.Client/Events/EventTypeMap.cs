using System.Text.Json;

namespace Fundament.Client.Events;

/// <summary>
/// Which .NET type each event type name is, the schema version this service writes it in, and
/// typed upcasters that turn older versions into the current type. Events the server has already
/// upcast (its declarative upcasts) arrive at the current version and need none.
/// </summary>
public sealed class EventTypeMap
{
    private readonly Dictionary<string, Registration> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<Type, Registration> _byType = [];

    /// <summary>Serializer options for event data (web defaults: camelCase).</summary>
    public JsonSerializerOptions SerializerOptions { get; set; } = new(JsonSerializerDefaults.Web);

    /// <summary>Maps <typeparamref name="T"/> to the event type <paramref name="name"/>, written at <paramref name="schemaVersion"/>.</summary>
    /// <exception cref="InvalidOperationException">The name or the type is mapped already.</exception>
    public Mapping<T> Map<T>(string name, int schemaVersion = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(schemaVersion, 1);
        if (_byName.ContainsKey(name) || _byType.ContainsKey(typeof(T)))
        {
            throw new InvalidOperationException($"Event type '{name}' or .NET type {typeof(T).Name} is mapped already.");
        }
        var registration = new Registration(name, typeof(T), schemaVersion);
        _byName[name] = registration;
        _byType[typeof(T)] = registration;
        return new Mapping<T>(registration);
    }

    /// <summary>The name and schema version <paramref name="type"/> is written as.</summary>
    /// <exception cref="InvalidOperationException"><paramref name="type"/> is not mapped.</exception>
    internal (string Name, int SchemaVersion) NameOf(Type type) => _byType.TryGetValue(type, out var r)
        ? (r.Name, r.SchemaVersion)
        : throw new InvalidOperationException($"{type.Name} is not mapped to an event type; call Map<{type.Name}>(\"Name\") in AddFundamentEventStore.");

    /// <summary>The event's data as its mapped type, upcast from an older schema version when needed; null when the type name is not mapped.</summary>
    /// <exception cref="EventVersionException">The event is older than the mapped version and no upcaster covers its version.</exception>
    internal object? Deserialize(StoredEvent e)
    {
        if (!_byName.TryGetValue(e.Type, out var registration))
        {
            return null;
        }
        if (e.SchemaVersion >= registration.SchemaVersion)
        {
            return e.Data.Deserialize(registration.Type, SerializerOptions);
        }
        if (!registration.Upcasters.TryGetValue(e.SchemaVersion, out var upcaster))
        {
            throw new EventVersionException($"Event {e.Type} {e.Stream}@{e.Version} is at schema version {e.SchemaVersion}, the service reads version {registration.SchemaVersion}, and no upcaster covers version {e.SchemaVersion}.");
        }
        return upcaster.Convert(e.Data.Deserialize(upcaster.From, SerializerOptions));
    }

    internal sealed record Registration(string Name, Type Type, int SchemaVersion)
    {
        public Dictionary<int, (Type From, Func<object?, object?> Convert)> Upcasters { get; } = [];
    }

    /// <summary>Adds typed upcasters to a mapping.</summary>
    public sealed class Mapping<T>
    {
        private readonly Registration _registration;

        internal Mapping(Registration registration) => _registration = registration;

        /// <summary>Reads events written at <paramref name="fromVersion"/> as <typeparamref name="TOld"/> and converts them to <typeparamref name="T"/>.</summary>
        public Mapping<T> Upcast<TOld>(int fromVersion, Func<TOld, T> convert)
        {
            ArgumentNullException.ThrowIfNull(convert);
            if (fromVersion < 1 || fromVersion >= _registration.SchemaVersion)
            {
                throw new ArgumentOutOfRangeException(nameof(fromVersion), fromVersion, $"An upcaster reads a version below the mapped {_registration.SchemaVersion}.");
            }
            _registration.Upcasters[fromVersion] = (typeof(TOld), old => convert((TOld)old!));
            return this;
        }
    }
}

/// <summary>An event is older than the version this service reads, and nothing upcasts it.</summary>
public sealed class EventVersionException(string message) : Exception(message);
