namespace Fundament.Core.Notifications;

/// <summary>A message for one person (password reset links, alerts by mail, ...).</summary>
public sealed record NotificationMessage(string To, string Subject, string Body);

/// <summary>Delivers messages to people. SMTP when configured; otherwise the log (development only).</summary>
public interface INotificationSender
{
    Task SendAsync(NotificationMessage message, CancellationToken cancellationToken);
}
