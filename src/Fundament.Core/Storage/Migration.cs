namespace Fundament.Core.Storage;

/// <summary>
/// One versioned schema change of one module. <see cref="Sql"/> is portable SQL with dialect
/// tokens (see <see cref="SqlDialect.Expand"/>); versions start at 1 and never change once shipped.
/// </summary>
public sealed record Migration(int Version, string Name, string Sql);

/// <summary>A module's ordered list of migrations. Register with <c>AddMigrations</c>.</summary>
public interface IMigrationSource
{
    /// <summary>Module name; also the prefix of the module's tables.</summary>
    string Module { get; }

    IReadOnlyList<Migration> Migrations { get; }
}
