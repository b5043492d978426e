namespace Fundament.Identity.Users;

/// <summary>A user as the API shows it (never the password hash).</summary>
public sealed record UserResponse(string Id, string Username, string? Email, IReadOnlyList<string> Roles, bool Disabled, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>Body of <c>POST /api/v1/users</c>.</summary>
/// <param name="Username">Required. 3-64 characters of letters, digits and <c>. _ - @</c>; unique ignoring case.</param>
/// <param name="Password">Required. At least 12 characters and not a common password.</param>
/// <param name="Email">Optional; needed for password reset by mail.</param>
/// <param name="Roles">Optional; default <c>["user"]</c>.</param>
public sealed record CreateUserRequest(string? Username, string? Password, string? Email, IReadOnlyList<string>? Roles);

/// <summary>Body of <c>PATCH /api/v1/users/{id}</c>; a property left out (or null) is unchanged.</summary>
/// <param name="Email">New email; an empty string removes it.</param>
/// <param name="Password">New password; ends all of the user's sessions.</param>
/// <param name="Roles">Replaces the user's roles.</param>
/// <param name="Disabled">True disables the user and ends their sessions.</param>
public sealed record UpdateUserRequest(string? Email, string? Password, IReadOnlyList<string>? Roles, bool? Disabled);

/// <summary>One page of users.</summary>
public sealed record UserPage(IReadOnlyList<UserResponse> Items, int Page, int PageSize, long Total);
