using System.Text.RegularExpressions;

namespace Fundament.Vault.Secrets;

/// <summary>Secret paths: 1-256 characters, segments of letters, digits, '.', '_', '-' joined by '/'.</summary>
internal static partial class SecretPath
{
    public const int MaxLength = 256;

    [GeneratedRegex("^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")]
    private static partial Regex Pattern();

    public static string? Problem(string? path) =>
        string.IsNullOrEmpty(path) ? "path is required."
        : path.Length > MaxLength ? $"path must be at most {MaxLength} characters."
        : !Pattern().IsMatch(path) ? "path must be segments of letters, digits, '.', '_' and '-' separated by '/', not starting with '.'."
        : null;

    /// <summary>Whether a policy prefix covers a path, on segment boundaries: "db" covers "db" and "db/x", not "dbx".</summary>
    public static bool Covers(string prefix, string path) =>
        prefix.Length == 0
        || string.Equals(prefix, path, StringComparison.Ordinal)
        || (prefix.EndsWith('/') ? path.StartsWith(prefix, StringComparison.Ordinal) : path.StartsWith(prefix + "/", StringComparison.Ordinal));
}
