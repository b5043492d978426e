namespace Fundament.Vault;

/// <summary>Section <c>Fundament:Vault</c>.</summary>
public sealed class VaultOptions
{
    public const string SectionName = "Fundament:Vault";

    /// <summary>Versions kept per secret when the secret sets none; older ones are destroyed. Default 10.</summary>
    public int DefaultMaxVersions { get; set; } = 10;

    /// <summary>Largest secret value, in bytes of its JSON text. Default 65536.</summary>
    public int MaxValueBytes { get; set; } = 64 * 1024;

    /// <summary>Whether this node (a control node) publishes the vault's domain events (<c>secret.created</c>, <c>secret.rotated</c>) from its outbox, one node at a time by lease. Default true.</summary>
    public bool EventsEnabled { get; set; } = true;
}

internal sealed class VaultOptionsValidator : SettingsValidator<VaultOptions>
{
    protected override string Section => VaultOptions.SectionName;

    protected override void Check(VaultOptions o, SettingsProblems problems)
    {
        problems.Between(o.DefaultMaxVersions, 1, 1000);
        problems.Between(o.MaxValueBytes, 1024, 1024 * 1024);
    }
}
