using Fundament.Identity.Passwords;

namespace Fundament.Identity;

internal sealed class IdentityOptionsValidator(IConfiguration configuration) : SettingsValidator<IdentityOptions>
{
    protected override string Section => IdentityOptions.SectionName;

    protected override void Check(IdentityOptions o, SettingsProblems problems)
    {
        problems.Require(o.Issuer is not { Length: > 0 } issuer || Uri.TryCreate(issuer, UriKind.Absolute, out _), o.Issuer, "must be an absolute URL.");
        // Unset, each replica stamps the URL it was reached at, and every token from one is refused by the others with a bare 401.
        // Read from configuration, not IOptions<StorageOptions>: that one's own validation would throw from inside this one.
        var shared = string.Equals(configuration[StorageOptions.SectionName + ":" + nameof(StorageOptions.Provider)], "postgres", StringComparison.OrdinalIgnoreCase);
        problems.Require(!shared || !string.IsNullOrWhiteSpace(o.Issuer), o.Issuer,
            "is required with PostgreSQL storage: replicas share users and signing keys, and must all stamp and accept the same issuer (the public URL clients use, e.g. https://fundament.example.com), or tokens from one replica are refused by the others.");
        problems.Required(o.Audience);
        problems.Between(o.AccessTokenLifetime, TimeSpan.FromMinutes(1), TimeSpan.FromDays(1));
        problems.Between(o.ServiceTokenLifetime, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5));
        problems.AtLeast(o.RefreshTokenLifetime, TimeSpan.FromMinutes(5));
        problems.Require(o.SessionLifetime >= o.RefreshTokenLifetime, o.SessionLifetime, "must not be shorter than RefreshTokenLifetime.");
        problems.Require(o.SigningAlgorithm is "ES256" or "RS256", o.SigningAlgorithm, "must be 'ES256' or 'RS256'.");
        problems.Require(o.SigningKeyLifetime >= o.AccessTokenLifetime * 4, o.SigningKeyLifetime, "must be at least four access token lifetimes.");
        problems.Between(o.ClockSkew, TimeSpan.Zero, TimeSpan.FromMinutes(5));
        problems.AtLeast(o.PasswordHashIterations, 10_000);
        problems.Between(o.PasswordMinLength, 8, 128);
        problems.Between(o.PasswordResetTokenLifetime, TimeSpan.FromMinutes(1), TimeSpan.FromDays(2));
        problems.Require(o.PasswordResetUrl is not { Length: > 0 } url || url.Contains("{token}", StringComparison.Ordinal), o.PasswordResetUrl, "must contain {token}.");
        problems.Between(o.Lockout.MaxFailedAttempts, 1, 100);
        problems.Require(o.Lockout.Duration > TimeSpan.Zero && o.Lockout.MaxDuration >= o.Lockout.Duration, o.Lockout.Duration, "must be positive and not above Lockout:MaxDuration.");
        problems.Positive(o.Lockout.FailureWindow);
        // Judged by the policy above, so only once the policy's own settings are sound.
        if (o.BootstrapAdminPassword is { Length: > 0 } bootstrap && problems.Count == 0 &&
            new PasswordPolicy(Options.Create(o)).Check(bootstrap, Bootstrap.BootstrapAdmin.Username) is { } problem)
        {
            problems.Add(o.BootstrapAdminPassword, $"is not acceptable: {problem}");
        }
    }
}
