using System.Collections.Concurrent;
using NJsonSchema;
using NJsonSchema.Generation;
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
            await ParseAsync(schemaJson, CancellationToken.None);
            return null;
        }
        catch (NotSupportedException)
        {
            return "schema may only use references inside itself ($ref to #/...), not files or URLs.";
        }
        catch (Exception ex) when (ex is Newtonsoft.Json.JsonException or InvalidOperationException or ArgumentException)
        {
            return "schema is not a valid JSON Schema document.";
        }
    }

    /// <summary>
    /// Parses with a resolver that refuses file and URL references: a schema must not make the
    /// server read local files or fetch addresses (and must not break when such a URL goes away).
    /// </summary>
    private static Task<JsonSchema> ParseAsync(string schemaJson, CancellationToken cancellationToken) =>
        JsonSchema.FromJsonAsync(schemaJson, null, schema => new LocalReferencesOnly(new JsonSchemaAppender(schema, new DefaultTypeNameGenerator())), cancellationToken);

    private sealed class LocalReferencesOnly(JsonSchemaAppender appender) : JsonReferenceResolver(appender)
    {
        public override Task<NJsonSchema.References.IJsonReference> ResolveFileReferenceAsync(string filePath, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("File references are not allowed in configuration schemas.");

        public override Task<NJsonSchema.References.IJsonReference> ResolveUrlReferenceAsync(string url, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("URL references are not allowed in configuration schemas.");
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
                parsed = await ParseAsync(text, cancellationToken);
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
