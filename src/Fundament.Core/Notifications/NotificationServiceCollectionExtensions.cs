using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Fundament.Notifications;

public static class NotificationServiceCollectionExtensions
{
    public static IServiceCollection AddFundamentNotifications(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<NotificationOptions>()
            .Bind(configuration.GetSection(NotificationOptions.SectionName))
            .Validate(o => string.IsNullOrWhiteSpace(o.Smtp.Host) || !string.IsNullOrWhiteSpace(o.Smtp.From),
                "Fundament:Notifications:Smtp:From is required when Fundament:Notifications:Smtp:Host is set.")
            .Validate(o => o.Smtp.Port is > 0 and < 65536, "Fundament:Notifications:Smtp:Port must be 1-65535.")
            .Validate(o => o.Smtp.Security.ToLowerInvariant() is "starttls" or "tls" or "none",
                "Fundament:Notifications:Smtp:Security must be 'starttls', 'tls' or 'none'.")
            .Validate(o => string.IsNullOrWhiteSpace(o.Smtp.From) || MimeKit.MailboxAddress.TryParse(o.Smtp.From, out _),
                "Fundament:Notifications:Smtp:From is not a valid address.")
            .ValidateOnStart();
        services.TryAddSingleton<LogNotificationSender>();
        services.TryAddSingleton<SmtpNotificationSender>();
        services.TryAddSingleton<INotificationSender>(sp =>
            string.IsNullOrWhiteSpace(sp.GetRequiredService<IOptions<NotificationOptions>>().Value.Smtp.Host)
                ? sp.GetRequiredService<LogNotificationSender>()
                : sp.GetRequiredService<SmtpNotificationSender>());
        return services;
    }
}
