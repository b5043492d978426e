namespace Fundament.Core.Notifications;

public static class NotificationServiceCollectionExtensions
{
    public static IServiceCollection AddFundamentNotifications(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSettings<NotificationOptions, NotificationOptionsValidator>(configuration, NotificationOptions.SectionName);
        services.TryAddSingleton<LogNotificationSender>();
        services.TryAddSingleton<SmtpNotificationSender>();
        services.TryAddSingleton<INotificationSender>(sp =>
            string.IsNullOrWhiteSpace(sp.GetRequiredService<IOptions<NotificationOptions>>().Value.Smtp.Host)
                ? sp.GetRequiredService<LogNotificationSender>()
                : sp.GetRequiredService<SmtpNotificationSender>());
        return services;
    }
}

internal sealed class NotificationOptionsValidator : SettingsValidator<NotificationOptions>
{
    protected override string Section => NotificationOptions.SectionName;

    protected override void Check(NotificationOptions o, SettingsProblems problems)
    {
        problems.Require(string.IsNullOrWhiteSpace(o.Smtp.Host) || !string.IsNullOrWhiteSpace(o.Smtp.From), o.Smtp.From, "is required when Smtp:Host is set.");
        problems.Between(o.Smtp.Port, 1, 65535);
        problems.Require(o.Smtp.Security.ToLowerInvariant() is "starttls" or "tls" or "none", o.Smtp.Security, "must be 'starttls', 'tls' or 'none'.");
        problems.Require(string.IsNullOrWhiteSpace(o.Smtp.From) || MimeKit.MailboxAddress.TryParse(o.Smtp.From, out _), o.Smtp.From, "is not a valid address.");
    }
}
