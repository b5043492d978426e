using System.Globalization;
using System.Reflection;

namespace Fundament.Core.Storage;

/// <summary>
/// A module's migrations as SQL files, <c>Storage/Migrations/NNN-words.sql</c> in its project,
/// embedded by <c>src/Directory.Build.props</c>. <c>NNN</c> is the version; the first line,
/// <c>-- description</c>, is what the schema table records. The SQL is portable with dialect
/// tokens (<see cref="SqlDialect.Expand"/>). A shipped file never changes; the next change is the
/// next file.
/// </summary>
public sealed class EmbeddedMigrations : IMigrationSource
{
    /// <summary>The logical name prefix the build gives every migration file.</summary>
    public const string ResourcePrefix = "fundament-migrations/";

    public EmbeddedMigrations(string module, Assembly assembly)
    {
        Module = module;
        var migrations = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            var file = resource[ResourcePrefix.Length..];
            var dash = file.IndexOf('-', StringComparison.Ordinal);
            if (dash <= 0 || !int.TryParse(file.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version < 1)
            {
                throw new InvalidOperationException($"Migration file '{file}' of module {module} must be named NNN-words.sql.");
            }
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            var first = reader.ReadLine() ?? "";
            if (!first.StartsWith("-- ", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"Migration file '{file}' of module {module} must start with '-- <description>'.");
            }
            migrations.Add(new Migration(version, first[3..].Trim(), reader.ReadToEnd()));
        }
        migrations.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1)
            {
                throw new InvalidOperationException($"Migrations of module {module} must be numbered 1, 2, 3 ... without gaps or repeats; found {string.Join(", ", migrations.Select(m => m.Version))}.");
            }
        }
        Migrations = migrations;
    }

    public string Module { get; }

    public IReadOnlyList<Migration> Migrations { get; }

    /// <summary>Whether <paramref name="assembly"/> embeds any migration file.</summary>
    public static bool In(Assembly assembly) => assembly.GetManifestResourceNames().Any(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal));
}
