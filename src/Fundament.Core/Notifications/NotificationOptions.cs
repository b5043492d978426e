namespace Fundament.Core.Notifications;

/// <summary>Section <c>Fundament:Notifications</c>.</summary>
public sealed class NotificationOptions
{
    public const string SectionName = "Fundament:Notifications";

    /// <summary>SMTP server; when <see cref="SmtpOptions.Host"/> is empty messages go to the log.</summary>
    public SmtpOptions Smtp { get; set; } = new();
}

public sealed class SmtpOptions
{
    /// <summary>Host name of the SMTP server. Empty (default) disables SMTP.</summary>
    public string? Host { get; set; }

    /// <summary>Port. Default 587.</summary>
    public int Port { get; set; } = 587;

    /// <summary><c>starttls</c> (default), <c>tls</c> (implicit, port 465) or <c>none</c> (loopback relays only).</summary>
    public string Security { get; set; } = "starttls";

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>Sender address. Required with SMTP.</summary>
    public string? From { get; set; }

    /// <summary>Seconds to wait for the server. Default 30.</summary>
    public int TimeoutSeconds { get; set; } = 30;
}
