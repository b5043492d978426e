using System.Collections.Concurrent;
using Fundament.Core.Notifications;

namespace Fundament.Tests.Infrastructure;

/// <summary>Keeps every message instead of mailing it, so tests can read password reset tokens.</summary>
public sealed class CapturingNotificationSender : INotificationSender
{
    public ConcurrentQueue<NotificationMessage> Sent { get; } = new();

    public Task SendAsync(NotificationMessage message, CancellationToken cancellationToken)
    {
        Sent.Enqueue(message);
        return Task.CompletedTask;
    }
}
