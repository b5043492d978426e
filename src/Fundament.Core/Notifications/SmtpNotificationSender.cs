using Fundament.Core.Egress;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Fundament.Core.Notifications;

/// <summary>
/// Sends mail through the configured SMTP server with MailKit. The connection is opened by the
/// egress connector, so even the operator's SMTP host cannot be a metadata or link-local address
/// (it is the operator's choice otherwise: loopback relays work without an allow entry).
/// </summary>
internal sealed class SmtpNotificationSender(IOptions<NotificationOptions> options, EgressConnector egress) : INotificationSender
{
    public async Task SendAsync(NotificationMessage message, CancellationToken cancellationToken)
    {
        var smtp = options.Value.Smtp;
        var mime = new MimeMessage();
        mime.From.Add(MailboxAddress.Parse(smtp.From!));
        mime.To.Add(MailboxAddress.Parse(message.To));
        mime.Subject = message.Subject;
        mime.Body = new TextPart("plain") { Text = message.Body };

        using var client = new SmtpClient { Timeout = smtp.TimeoutSeconds * 1000 };
        var security = smtp.Security.ToLowerInvariant() switch
        {
            "tls" => SecureSocketOptions.SslOnConnect,
            "none" => SecureSocketOptions.None,
            _ => SecureSocketOptions.StartTls,
        };
        var socket = await egress.ConnectSocketAsync(EgressPurpose.AlertChannels, smtp.Host!, smtp.Port, null, cancellationToken, operatorConfigured: true);
        await client.ConnectAsync(socket, smtp.Host!, smtp.Port, security, cancellationToken);
        if (!string.IsNullOrEmpty(smtp.Username))
        {
            await client.AuthenticateAsync(smtp.Username, smtp.Password ?? string.Empty, cancellationToken);
        }
        await client.SendAsync(mime, cancellationToken);
        await client.DisconnectAsync(quit: true, cancellationToken);
    }
}
