using System.Collections.Concurrent;
using NJsonSchema;
using NJsonSchema.Validation;

namespace Fundament.Config;

/// <summary>
/// JSON Schemas by key prefix: a value is accepted only if it satisfies the schema of every prefix
/// of its key. Parsed schemas are cached by their text.
/// </summary>
internal sealed class ConfigSchemas(ConfigStore store)
{
    private readonly ConcurrentDictionary<string, JsonSchema> _parsed = new(StringComparer.Ordinal);

    /// <summary>Parses a schema; returns why it is not a usable JSON Schema, or null.</summary>
    public static async Task<string?> ProblemAsync(string schemaJson)
    {
        try
        {
            await JsonSchema.FromJsonAsync(schemaJson);
            return null;
        }
        catch (Exception ex) when (ex is Newtonsoft.Json.JsonException or InvalidOperationException or NotSupportedException or ArgumentException)
        {
            return "schema is not a valid JSON Schema document.";
        }
    }

    /// <summary>Validation errors of <paramref name="valueJson"/> for <paramref name="key"/>, empty when it conforms.</summary>
    public async Task<IReadOnlyList<string>> ValidateAsync(string key, string valueJson, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        foreach (var schema in (await store.ListSchemasAsync(cancellationToken)).Where(s => key.StartsWith(s.KeyPrefix, StringComparison.Ordinal)))
        {
            var text = schema.Schema.GetRawText();
            if (!_parsed.TryGetValue(text, out var parsed))
            {
                parsed = await JsonSchema.FromJsonAsync(text, cancellationToken);
                _parsed[text] = parsed;
            }
            foreach (var error in parsed.Validate(valueJson))
            {
                errors.Add(Describe(schema.KeyPrefix, error));
            }
        }
        return errors;
    }

    private static string Describe(string prefix, ValidationError error)
    {
        var where = string.IsNullOrEmpty(error.Path) || error.Path == "#" ? "the value" : error.Path;
        return $"{where}: {error.Kind} (schema for '{prefix}')";
    }
}
