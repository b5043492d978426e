namespace Fundament.Storage;

/// <summary>Tables of the platform itself (not of a module).</summary>
internal sealed class PlatformMigrations : IMigrationSource
{
    public string Module => "fundament";

    public IReadOnlyList<Migration> Migrations { get; } =
    [
        new(1, "leases", """
            CREATE TABLE fundament_leases (
                name TEXT NOT NULL PRIMARY KEY,
                owner TEXT NOT NULL,
                until_at BIGINT NOT NULL);
            """),
    ];
}
