using Fundament.Identity.Passwords;
using Microsoft.Extensions.Options;

namespace Fundament.Identity;

internal sealed class IdentityOptionsValidator : IValidateOptions<IdentityOptions>
{
    public ValidateOptionsResult Validate(string? name, IdentityOptions o)
    {
        var errors = new List<string>();
        const string S = IdentityOptions.SectionName;
        if (o.Issuer is { Length: > 0 } issuer && !Uri.TryCreate(issuer, UriKind.Absolute, out _))
        {
            errors.Add($"{S}:Issuer must be an absolute URL.");
        }
        if (string.IsNullOrWhiteSpace(o.Audience))
        {
            errors.Add($"{S}:Audience is required.");
        }
        if (o.AccessTokenLifetime < TimeSpan.FromMinutes(1) || o.AccessTokenLifetime > TimeSpan.FromDays(1))
        {
            errors.Add($"{S}:AccessTokenLifetime must be between 00:01:00 and 1.00:00:00.");
        }
        if (o.ServiceTokenLifetime < TimeSpan.FromSeconds(30) || o.ServiceTokenLifetime > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{S}:ServiceTokenLifetime must be between 00:00:30 and 00:05:00.");
        }
        if (o.RefreshTokenLifetime < TimeSpan.FromMinutes(5))
        {
            errors.Add($"{S}:RefreshTokenLifetime must be at least 00:05:00.");
        }
        if (o.SessionLifetime < o.RefreshTokenLifetime)
        {
            errors.Add($"{S}:SessionLifetime must not be shorter than RefreshTokenLifetime.");
        }
        if (o.SigningAlgorithm is not ("ES256" or "RS256"))
        {
            errors.Add($"{S}:SigningAlgorithm must be 'ES256' or 'RS256'.");
        }
        if (o.SigningKeyLifetime < o.AccessTokenLifetime * 4)
        {
            errors.Add($"{S}:SigningKeyLifetime must be at least four access token lifetimes.");
        }
        if (o.ClockSkew < TimeSpan.Zero || o.ClockSkew > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{S}:ClockSkew must be between 0 and 00:05:00.");
        }
        if (o.PasswordHashIterations < 10_000)
        {
            errors.Add($"{S}:PasswordHashIterations must be at least 10000.");
        }
        if (o.PasswordMinLength is < 8 or > 128)
        {
            errors.Add($"{S}:PasswordMinLength must be between 8 and 128.");
        }
        if (o.PasswordResetTokenLifetime < TimeSpan.FromMinutes(1) || o.PasswordResetTokenLifetime > TimeSpan.FromDays(2))
        {
            errors.Add($"{S}:PasswordResetTokenLifetime must be between 00:01:00 and 2.00:00:00.");
        }
        if (o.PasswordResetUrl is { Length: > 0 } url && !url.Contains("{token}", StringComparison.Ordinal))
        {
            errors.Add($"{S}:PasswordResetUrl must contain {{token}}.");
        }
        if (o.Lockout.MaxFailedAttempts is < 1 or > 100)
        {
            errors.Add($"{S}:Lockout:MaxFailedAttempts must be between 1 and 100.");
        }
        if (o.Lockout.Duration <= TimeSpan.Zero || o.Lockout.MaxDuration < o.Lockout.Duration)
        {
            errors.Add($"{S}:Lockout:Duration must be positive and not above Lockout:MaxDuration.");
        }
        if (o.Lockout.FailureWindow <= TimeSpan.Zero)
        {
            errors.Add($"{S}:Lockout:FailureWindow must be positive.");
        }
        if (o.BootstrapAdminPassword is { Length: > 0 } bootstrap && errors.Count == 0 &&
            new PasswordPolicy(Options.Create(o)).Check(bootstrap, Bootstrap.BootstrapAdmin.Username) is { } problem)
        {
            errors.Add($"{S}:BootstrapAdminPassword is not acceptable: {problem}");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
