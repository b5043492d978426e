namespace Fundament.Core.Modules;

/// <summary>
/// Domain events for webhook subscribers (<c>/api/v1/webhooks</c>). Publishing stores one durable,
/// signed, retried delivery per matching subscription before it returns. Implemented by the
/// delivery module.
/// </summary>
public interface IEventPublisher
{
    /// <param name="eventName">e.g. <c>media.ready</c>.</param>
    /// <param name="audience">The actor the event concerns (<c>user:&lt;id&gt;</c>): their own subscriptions and all-events subscriptions receive it.</param>
    /// <param name="data">Serialized as the <c>data</c> field of the payload.</param>
    Task PublishAsync(string eventName, string audience, object data, CancellationToken cancellationToken);
}
