using System.ComponentModel;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Fundament.Cli;

/// <summary>Options every command takes.</summary>
internal class FundSettings : CommandSettings
{
    [CommandOption("-o|--output <FORMAT>")]
    [Description("table (default) or json")]
    [DefaultValue("table")]
    public string Output { get; init; } = "table";

    [CommandOption("--context <NAME>")]
    [Description("Use this context instead of the current one")]
    public string? Context { get; init; }

    public bool Json => string.Equals(Output, "json", StringComparison.OrdinalIgnoreCase);

    public override ValidationResult Validate() =>
        Output is "table" or "json" ? ValidationResult.Success() : ValidationResult.Error("--output must be table or json");
}

internal static class Output
{
    /// <summary>JSON as the server sent it (for scripts), or a table of <paramref name="columns"/> from each item.</summary>
    public static void Items(FundSettings settings, JsonNode? node, IReadOnlyList<(string Header, Func<JsonNode, string?> Value)> columns)
    {
        if (settings.Json)
        {
            Json(node);
            return;
        }
        var items = node switch
        {
            JsonArray array => array,
            JsonObject o when o["items"] is JsonArray array => array,
            _ => [],
        };
        var table = new Table().Border(TableBorder.Simple);
        foreach (var (header, _) in columns)
        {
            table.AddColumn(header);
        }
        foreach (var item in items.OfType<JsonNode>())
        {
            table.AddRow(columns.Select(c => Markup.Escape(c.Value(item) ?? "")).ToArray());
        }
        AnsiConsole.Write(table);
    }

    /// <summary>One object: JSON, or its fields one per line.</summary>
    public static void Object(FundSettings settings, JsonNode? node)
    {
        if (settings.Json || node is not JsonObject o)
        {
            Json(node);
            return;
        }
        var grid = new Grid().AddColumn().AddColumn();
        foreach (var (key, value) in o)
        {
            grid.AddRow(Markup.Escape(key), Markup.Escape(value is JsonValue v ? v.ToString() : value?.ToJsonString() ?? ""));
        }
        AnsiConsole.Write(grid);
    }

    public static void Json(JsonNode? node) => Console.Out.WriteLine(node?.ToJsonString(CliJson.Indented) ?? "null");

    public static string? Text(JsonNode item, string name) => item[name] switch
    {
        null => null,
        JsonValue v => v.ToString(),
        var other => other.ToJsonString(),
    };
}
