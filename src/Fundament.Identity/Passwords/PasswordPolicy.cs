using System.Collections.Frozen;

namespace Fundament.Identity.Passwords;

/// <summary>
/// Length first (NIST SP 800-63B), then a block list: the 28,000 most common passwords of the
/// zxcvbn frequency list, the same with a short run of digits or symbols tacked on, a single
/// repeated character, and the username itself. No composition rules: they make passwords worse.
/// </summary>
internal sealed class PasswordPolicy(IOptions<IdentityOptions> options)
{
    public const int MaxLength = 256;

    private static readonly Lazy<FrozenSet<string>> Common = new(LoadCommon);

    /// <summary>Returns why <paramref name="password"/> is refused, or null when it is acceptable.</summary>
    public string? Check(string? password, string? username)
    {
        var min = options.Value.PasswordMinLength;
        if (string.IsNullOrEmpty(password))
        {
            return "password is required.";
        }
        if (password.Length < min)
        {
            return $"password must be at least {min} characters.";
        }
        if (password.Length > MaxLength)
        {
            return $"password must be at most {MaxLength} characters.";
        }
        var lower = password.ToLowerInvariant();
        if (lower.Distinct().Count() <= 2)
        {
            return "password is too repetitive.";
        }
        if (username is { Length: > 0 } && lower.Contains(username.ToLowerInvariant(), StringComparison.Ordinal))
        {
            return "password must not contain the username.";
        }
        if (IsCommon(lower))
        {
            return "password is one of the most commonly used passwords.";
        }
        return null;
    }

    private static bool IsCommon(string lower)
    {
        var common = Common.Value;
        if (common.Contains(lower))
        {
            return true;
        }
        // "sunshine2024!" is "sunshine" with a decoration; strip a short tail of digits and symbols.
        var end = lower.Length;
        while (end > 0 && !char.IsLetter(lower[end - 1]))
        {
            end--;
        }
        if (end < lower.Length && lower.Length - end <= 6 && end >= 6 && common.Contains(lower[..end]))
        {
            return true;
        }
        // "passwordpassword": a common word repeated.
        if (lower.Length % 2 == 0 && lower[..(lower.Length / 2)] == lower[(lower.Length / 2)..] && common.Contains(lower[..(lower.Length / 2)]))
        {
            return true;
        }
        return false;
    }

    private static FrozenSet<string> LoadCommon()
    {
        using var stream = typeof(PasswordPolicy).Assembly.GetManifestResourceStream("Fundament.Identity.common-passwords.txt")
            ?? throw new InvalidOperationException("The common password list is missing from the assembly.");
        using var reader = new StreamReader(stream);
        var set = new HashSet<string>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 0)
            {
                set.Add(line);
            }
        }
        return set.ToFrozenSet(StringComparer.Ordinal);
    }
}
