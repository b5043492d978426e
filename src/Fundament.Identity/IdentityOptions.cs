namespace Fundament.Identity;

/// <summary>Section <c>Fundament:Identity</c>.</summary>
public sealed class IdentityOptions
{
    public const string SectionName = "Fundament:Identity";

    /// <summary>
    /// <c>iss</c> of every token and the base of the discovery document. Default: the first URL the
    /// server listens on. Set it to the public URL when Fundament sits behind a proxy. Required with
    /// PostgreSQL storage (a shared store means replicas), where start-up refuses to go on without it.
    /// </summary>
    public string? Issuer { get; set; }

    /// <summary><c>aud</c> of every access token. Default <c>fundament</c>.</summary>
    public string Audience { get; set; } = "fundament";

    /// <summary>Access token lifetime. Default 15 minutes.</summary>
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Lifetime of the tokens the gateway sends upstream in place of the caller's credential
    /// (audience <c>service:&lt;name&gt;</c>, route setting <c>forwardAuthorization: exchange</c>).
    /// Default 5 minutes, the most allowed; at least 30 seconds.
    /// </summary>
    public TimeSpan ServiceTokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long an unused refresh token stays valid. Default 14 days.</summary>
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>Longest a session (a refresh token family) lives, however often it is refreshed. Default 30 days.</summary>
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary><c>ES256</c> (default) or <c>RS256</c>.</summary>
    public string SigningAlgorithm { get; set; } = "ES256";

    /// <summary>How long one signing key signs before the next takes over. Default 30 days.</summary>
    public TimeSpan SigningKeyLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Clock skew tolerated when validating token times. Default 30 seconds.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Password of the <c>admin</c> user created on first start. Default: random, printed once.</summary>
    public string? BootstrapAdminPassword { get; set; }

    /// <summary>PBKDF2-SHA512 iterations for new hashes. Default 210,000 (OWASP 2023); existing hashes are upgraded at login.</summary>
    public int PasswordHashIterations { get; set; } = 210_000;

    /// <summary>Shortest password accepted. Default 12.</summary>
    public int PasswordMinLength { get; set; } = 12;

    /// <summary>How long a password reset token is valid. Default 30 minutes.</summary>
    public TimeSpan PasswordResetTokenLifetime { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Link sent in password reset messages, with <c>{token}</c> where the token goes. Default: none;
    /// the message then carries the token and the confirm endpoint.
    /// </summary>
    public string? PasswordResetUrl { get; set; }

    public LockoutOptions Lockout { get; set; } = new();
}

/// <summary>Section <c>Fundament:Identity:Lockout</c>: brute-force protection per username.</summary>
public sealed class LockoutOptions
{
    /// <summary>Failed logins in a row that lock the account. Default 5.</summary>
    public int MaxFailedAttempts { get; set; } = 5;

    /// <summary>First lockout; each further lockout doubles it. Default 1 minute.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Longest lockout. Default 1 hour.</summary>
    public TimeSpan MaxDuration { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Failures older than this no longer count, and the back-off resets after a quiet day. Default 15 minutes.</summary>
    public TimeSpan FailureWindow { get; set; } = TimeSpan.FromMinutes(15);
}
