namespace Fundament.Core.Modules;

/// <summary>Event types a module publishes (<see cref="IEventPublisher"/>), which webhooks may subscribe to.</summary>
public interface IEventTypeSource
{
    IReadOnlyList<EventTypeDefinition> EventTypes { get; }
}

/// <param name="Name">e.g. <c>media.ready</c>.</param>
/// <param name="Description">When it is published and what its data holds.</param>
public sealed record EventTypeDefinition(string Name, string Description);
