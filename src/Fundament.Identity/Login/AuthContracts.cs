using System.Text.Json.Serialization;

namespace Fundament.Identity.Login;

/// <summary>Body of <c>POST /api/v1/auth/login</c>. Both fields required.</summary>
public sealed record LoginRequest(string? Username, string? Password);

/// <summary>Body of <c>POST /api/v1/auth/refresh</c> and <c>/logout</c>.</summary>
public sealed record RefreshRequest([property: JsonPropertyName("refresh_token")] string? RefreshToken);

/// <summary>OAuth 2.0 token response (RFC 6749 section 5.1).</summary>
public sealed record TokenResponse(
    [property: JsonPropertyName("access_token")] string AccessToken,
    [property: JsonPropertyName("refresh_token"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? RefreshToken,
    [property: JsonPropertyName("token_type")] string TokenType,
    [property: JsonPropertyName("expires_in")] int ExpiresIn);

/// <summary>Body of <c>POST /api/v1/auth/password-reset</c>: the username or the email of the account.</summary>
public sealed record PasswordResetRequest(string? Username, string? Email);

/// <summary>Body of <c>POST /api/v1/auth/password-reset/confirm</c>.</summary>
public sealed record PasswordResetConfirmRequest(string? Token, string? NewPassword);

/// <summary>Body of <c>POST /api/v1/me/password</c>.</summary>
/// <param name="KeepApiKeys">Optional, default false: the account's API keys are revoked with the change, unless this is true.</param>
public sealed record ChangePasswordRequest(string? CurrentPassword, string? NewPassword, bool? KeepApiKeys = null);
