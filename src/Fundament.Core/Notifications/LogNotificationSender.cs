namespace Fundament.Core.Notifications;

/// <summary>
/// The default sender while no SMTP server is configured: writes the message to the log so a
/// developer on the embedded setup can follow a password reset. It is the delivery channel, so the
/// message (which may carry a one-time link) is in that log line; configure SMTP for production.
/// </summary>
internal sealed partial class LogNotificationSender(ILogger<LogNotificationSender> logger) : INotificationSender
{
    public Task SendAsync(NotificationMessage message, CancellationToken cancellationToken)
    {
        LogMessage(logger, message.To, message.Subject, message.Body);
        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Notification (no SMTP configured) to {To}: {Subject}\n{Body}")]
    private static partial void LogMessage(ILogger logger, string to, string subject, string body);
}
