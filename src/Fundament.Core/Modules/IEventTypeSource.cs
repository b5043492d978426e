namespace Fundament.Core.Modules;

/// <summary>Event types a module publishes (<see cref="IEventPublisher"/>), which webhooks may subscribe to.</summary>
public interface IEventTypeSource
{
    IReadOnlyList<EventTypeDefinition> EventTypes { get; }
}

/// <param name="Name">e.g. <c>media.ready</c>.</param>
/// <param name="Description">When it is published and what its data holds.</param>
/// <param name="Permission">
/// A permission a webhook's owner must hold to subscribe to it by name (checked when the subscription
/// is made); such an event never reaches a subscription to every event (<c>*</c>). Null: anyone whose
/// audience it is may subscribe.
/// </param>
public sealed record EventTypeDefinition(string Name, string Description, string? Permission = null);
