namespace Fundament.Vault;

public static class VaultPermissions
{
    /// <summary>Every secret and the vault's administration (master key rotation).</summary>
    public const string Admin = "vault.admin";

    /// <summary>Manage secret policies.</summary>
    public const string Policies = "vault.policies";
}
