namespace Fundament.Identity;

/// <summary>Permissions of the identity module.</summary>
public static class IdentityPermissions
{
    public const string UsersRead = "users.read";
    public const string UsersWrite = "users.write";
    public const string RolesRead = "roles.read";
    public const string RolesWrite = "roles.write";
    public const string ClientsRead = "clients.read";
    public const string ClientsWrite = "clients.write";
    public const string ApiKeysOwn = "apikeys.own";

    /// <summary>Read quota defaults, overrides and any user's usage.</summary>
    public const string QuotasRead = "quotas.read";

    /// <summary>Set quota overrides on roles, users and clients (only those whose permissions one holds).</summary>
    public const string QuotasWrite = "quotas.write";
}
