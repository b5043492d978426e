using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;

namespace Fundament.Core.Hosting;

/// <summary>
/// The one way a module checks its settings: a validator per options class, whose every problem
/// names its full key (<c>Fundament:Jobs:PollInterval must be ...</c>). Keys come from the
/// compiler (the checked expression, as with <c>nameof</c>), never typed by hand. A bad setting
/// stops start-up with exit code 2 and one line per problem.
/// </summary>
public abstract class SettingsValidator<TOptions> : IValidateOptions<TOptions>
    where TOptions : class
{
    /// <summary>The configuration section, e.g. <c>Fundament:Jobs</c>.</summary>
    protected abstract string Section { get; }

    protected abstract void Check(TOptions options, SettingsProblems problems);

    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        var problems = new SettingsProblems(Section);
        Check(options, problems);
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems.Messages);
    }
}

/// <summary>Collects problems for one section. Each check takes the member it checks (<c>o.PollInterval</c>) and turns it into the key.</summary>
public sealed partial class SettingsProblems(string section)
{
    private readonly List<string> _messages = [];

    public IReadOnlyList<string> Messages => _messages;

    public int Count => _messages.Count;

    /// <summary>The full key of a checked member: <c>o.Lockout.Duration</c> in section <c>Fundament:Identity</c> is <c>Fundament:Identity:Lockout:Duration</c>.</summary>
    public string Key(string expression)
    {
        if (!MemberPath().IsMatch(expression))
        {
            throw new ArgumentException($"'{expression}' is not a member of the options (o.Name or o.Group.Name).", nameof(expression));
        }
        return section + ":" + expression[(expression.IndexOf('.', StringComparison.Ordinal) + 1)..].Replace('.', ':');
    }

    /// <summary>A problem in the member's own words: <c>Add(o.Issuer, "must be an absolute URL.")</c>.</summary>
    public void Add<T>(T value, string message, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        _ = value;
        _messages.Add($"{Key(member)} {message}");
    }

    /// <summary>A problem that is not one member's (already a full sentence naming its keys).</summary>
    public void AddSentence(string message) => _messages.Add(message);

    /// <summary>Adds <paramref name="message"/> unless <paramref name="condition"/> holds.</summary>
    public void Require<T>(bool condition, T value, string message, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        if (!condition)
        {
            _messages.Add($"{Key(member)} {message}");
        }
    }

    public void Between(long value, long min, long max, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        if (value < min || value > max)
        {
            _messages.Add(string.Create(CultureInfo.InvariantCulture, $"{Key(member)} must be between {min} and {max}."));
        }
    }

    public void AtLeast(long value, long min, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        if (value < min)
        {
            _messages.Add(string.Create(CultureInfo.InvariantCulture, $"{Key(member)} must be at least {min}."));
        }
    }

    public void Between(TimeSpan value, TimeSpan min, TimeSpan max, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        if (value < min || value > max)
        {
            _messages.Add($"{Key(member)} must be between {Format(min)} and {Format(max)}.");
        }
    }

    public void AtLeast(TimeSpan value, TimeSpan min, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        if (value < min)
        {
            _messages.Add($"{Key(member)} must be at least {Format(min)}.");
        }
    }

    public void Positive(TimeSpan value, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        if (value <= TimeSpan.Zero)
        {
            _messages.Add($"{Key(member)} must be positive.");
        }
    }

    public void OneOf(string? value, IReadOnlyList<string> allowed, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        if (value is null || !allowed.Contains(value, StringComparer.Ordinal))
        {
            _messages.Add($"{Key(member)} must be {string.Join(", ", allowed.SkipLast(1))} or {allowed[^1]}.");
        }
    }

    public void Required(string? value, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            _messages.Add($"{Key(member)} is required.");
        }
    }

    /// <summary>Null (not set) passes; anything else, an empty value included, must be an absolute http(s) URL.</summary>
    public void AbsoluteHttpUrl(string? value, [CallerArgumentExpression(nameof(value))] string member = "")
    {
        if (value is not null && !(Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
        {
            _messages.Add($"{Key(member)} must be an absolute http(s) URL.");
        }
    }

    /// <summary>As settings are written: <c>00:00:00.1</c>, <c>00:05:00</c>, <c>1.00:00:00</c>.</summary>
    private static string Format(TimeSpan value) => value.ToString("c", CultureInfo.InvariantCulture) is var text && text.Contains('.', StringComparison.Ordinal) && text.LastIndexOf('.') > text.IndexOf(':', StringComparison.Ordinal)
        ? text.TrimEnd('0')
        : text;

    [GeneratedRegex(@"^\w+(\.\w+)+$")]
    private static partial Regex MemberPath();
}

public static class SettingsServiceCollectionExtensions
{
    /// <summary>Binds <typeparamref name="TOptions"/> to <paramref name="section"/>, checks it with <typeparamref name="TValidator"/>, and fails start-up on a problem.</summary>
    public static OptionsBuilder<TOptions> AddSettings<TOptions, TValidator>(this IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, TValidator>());
        return services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateOnStart();
    }
}
