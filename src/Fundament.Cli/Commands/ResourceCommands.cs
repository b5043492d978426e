using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console.Cli;

namespace Fundament.Cli.Commands;

internal static class Url
{
    public static string E(string value) => Uri.EscapeDataString(value);

    /// <summary>A secret path keeps its slashes; each segment is escaped.</summary>
    public static string SecretPath(string path) => string.Join('/', path.Trim('/').Split('/').Select(Uri.EscapeDataString));
}

// ---- secrets ----

internal sealed class SecretsListSettings : FundSettings
{
    [CommandArgument(0, "[PREFIX]")]
    [Description("Only paths under this prefix")]
    public string? Prefix { get; init; }
}

internal sealed class SecretsListCommand : AsyncCommand<SecretsListSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SecretsListSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        var node = await api.GetAsync($"api/v1/secrets?limit=500{(settings.Prefix is { } p ? "&prefix=" + Url.E(p) : "")}", cancellationToken);
        if (settings.Json)
        {
            Output.Json(node);
            return ExitCodes.Ok;
        }
        var paths = node?["paths"] as JsonArray ?? [];
        Output.Items(settings, new JsonArray(paths.Select(p => (JsonNode)new JsonObject { ["path"] = p?.DeepClone() }).ToArray()), [("PATH", i => Output.Text(i, "path"))]);
        return ExitCodes.Ok;
    }
}

internal sealed class SecretPathSettings : FundSettings
{
    [CommandArgument(0, "<PATH>")]
    public string Path { get; init; } = "";
}

internal sealed class SecretsGetSettings : FundSettings
{
    [CommandArgument(0, "<PATH>")]
    public string Path { get; init; } = "";

    [CommandOption("-f|--field <NAME>")]
    [Description("Print only this field of the value, raw (for scripts)")]
    public string? Field { get; init; }

    [CommandOption("--version <N>")]
    public int? Version { get; init; }
}

internal sealed class SecretsGetCommand : AsyncCommand<SecretsGetSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SecretsGetSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        var node = await api.GetAsync($"api/v1/secrets/{Url.SecretPath(settings.Path)}{(settings.Version is { } v ? $"?version={v}" : "")}", cancellationToken);
        if (settings.Field is { } field)
        {
            var value = node?["value"]?[field] ?? throw new CliException(ExitCodes.NotFound, $"the secret has no field '{field}'.");
            Console.Out.WriteLine(value is JsonValue text && text.TryGetValue<string>(out var s) ? s : value.ToJsonString());
            return ExitCodes.Ok;
        }
        Output.Json(settings.Json ? node : node?["value"]);
        return ExitCodes.Ok;
    }
}

internal sealed class SecretsPutSettings : FundSettings
{
    [CommandArgument(0, "<PATH>")]
    public string Path { get; init; } = "";

    [CommandArgument(1, "[FIELD=VALUE...]")]
    [Description("Fields of the value; or give the whole value as JSON with --json-stdin")]
    public string[] Fields { get; init; } = [];

    [CommandOption("--json-stdin")]
    [Description("Read the value (a JSON object) from standard input")]
    public bool JsonFromStdin { get; init; }
}

internal sealed class SecretsPutCommand : AsyncCommand<SecretsPutSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SecretsPutSettings settings, CancellationToken cancellationToken)
    {
        JsonNode value;
        if (settings.JsonFromStdin)
        {
            try
            {
                value = JsonNode.Parse(await Console.In.ReadToEndAsync(cancellationToken)) ?? throw new CliException(ExitCodes.Usage, "standard input held no JSON.");
            }
            catch (JsonException ex)
            {
                throw new CliException(ExitCodes.Usage, $"standard input is not JSON: {ex.Message}");
            }
        }
        else
        {
            if (settings.Fields.Length == 0)
            {
                throw new CliException(ExitCodes.Usage, "give FIELD=VALUE pairs, or --json-stdin.");
            }
            var o = new JsonObject();
            foreach (var pair in settings.Fields)
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new CliException(ExitCodes.Usage, $"'{pair}' is not FIELD=VALUE.");
                }
                o[pair[..eq]] = pair[(eq + 1)..];
            }
            value = o;
        }
        using var api = FundApi.Open(settings.Context);
        var node = await api.SendJsonAsync(HttpMethod.Put, $"api/v1/secrets/{Url.SecretPath(settings.Path)}", new { value }, cancellationToken);
        Output.Object(settings, node);
        return ExitCodes.Ok;
    }
}

internal sealed class SecretsRemoveCommand : AsyncCommand<SecretPathSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SecretPathSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        await api.SendJsonAsync(HttpMethod.Delete, $"api/v1/secrets/{Url.SecretPath(settings.Path)}", null, cancellationToken);
        return ExitCodes.Ok;
    }
}

// ---- config ----

internal class ConfigScopeSettings : FundSettings
{
    [CommandArgument(0, "<SERVICE>")]
    public string Service { get; init; } = "";

    [CommandOption("-e|--env <ENVIRONMENT>")]
    [Description("The environment (default *, every environment)")]
    [DefaultValue("*")]
    public string Environment { get; init; } = "*";
}

internal sealed class ConfigGetCommand : AsyncCommand<ConfigScopeSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ConfigScopeSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        var env = settings.Environment == "*" ? "" : "&environment=" + Url.E(settings.Environment);
        var node = await api.GetAsync($"api/v1/config/resolved?service={Url.E(settings.Service)}{env}", cancellationToken);
        if (settings.Json)
        {
            Output.Json(node);
            return ExitCodes.Ok;
        }
        var values = node?["values"] as JsonObject ?? [];
        Output.Items(settings, new JsonArray(values.Select(v => (JsonNode)new JsonObject { ["key"] = v.Key, ["value"] = v.Value?.ToJsonString() }).ToArray()),
            [("KEY", i => Output.Text(i, "key")), ("VALUE", i => Output.Text(i, "value"))]);
        return ExitCodes.Ok;
    }
}

internal sealed class ConfigSetSettings : ConfigScopeSettings
{
    [CommandArgument(1, "<KEY>")]
    public string Key { get; init; } = "";

    [CommandArgument(2, "<VALUE>")]
    [Description("JSON (true, 5, \"text\", {...}); anything else is taken as a string")]
    public string Value { get; init; } = "";
}

internal sealed class ConfigSetCommand : AsyncCommand<ConfigSetSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ConfigSetSettings settings, CancellationToken cancellationToken)
    {
        JsonNode? value;
        try
        {
            value = JsonNode.Parse(settings.Value);
        }
        catch (JsonException)
        {
            value = JsonValue.Create(settings.Value);
        }
        using var api = FundApi.Open(settings.Context);
        var node = await api.SendJsonAsync(HttpMethod.Put, "api/v1/config/entries",
            new { service = settings.Service, environment = settings.Environment, key = settings.Key, value }, cancellationToken);
        Output.Object(settings, node);
        return ExitCodes.Ok;
    }
}

internal class ConfigKeySettings : ConfigScopeSettings
{
    [CommandArgument(1, "<KEY>")]
    public string Key { get; init; } = "";
}

internal sealed class ConfigHistoryCommand : AsyncCommand<ConfigKeySettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ConfigKeySettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        var node = await api.GetAsync($"api/v1/config/history?service={Url.E(settings.Service)}&environment={Url.E(settings.Environment)}&key={Url.E(settings.Key)}", cancellationToken);
        Output.Items(settings, node, [("VERSION", i => Output.Text(i, "version")), ("VALUE", i => i["value"]?.ToJsonString()), ("BY", i => Output.Text(i, "changedBy") ?? Output.Text(i, "by")), ("AT", i => Output.Text(i, "changedAt") ?? Output.Text(i, "at"))]);
        return ExitCodes.Ok;
    }
}

internal sealed class ConfigRollbackSettings : ConfigKeySettings
{
    [CommandArgument(2, "<VERSION>")]
    public int Version { get; init; }
}

internal sealed class ConfigRollbackCommand : AsyncCommand<ConfigRollbackSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ConfigRollbackSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        var node = await api.SendJsonAsync(HttpMethod.Post, "api/v1/config/rollback",
            new { service = settings.Service, environment = settings.Environment, key = settings.Key, version = settings.Version }, cancellationToken);
        Output.Object(settings, node);
        return ExitCodes.Ok;
    }
}

// ---- services ----

internal sealed class ServicesListCommand : AsyncCommand<FundSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, FundSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        Output.Items(settings, await api.GetAsync("api/v1/registry/services", cancellationToken), Columns);
        return ExitCodes.Ok;
    }

    public static readonly (string, Func<JsonNode, string?>)[] Columns =
        [("SERVICE", i => Output.Text(i, "service")), ("PASSING", i => Output.Text(i, "passing")), ("WARNING", i => Output.Text(i, "warning")), ("CRITICAL", i => Output.Text(i, "critical"))];
}

/// <summary>Prints the services table again whenever it changes, until Ctrl-C.</summary>
internal sealed class ServicesWatchCommand : AsyncCommand<FundSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, FundSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        string? last = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            var node = await api.GetAsync("api/v1/registry/services", cancellationToken);
            var text = node?.ToJsonString();
            if (text != last)
            {
                last = text;
                if (!settings.Json)
                {
                    Console.Out.WriteLine($"-- {DateTimeOffset.Now:HH:mm:ss}");
                }
                Output.Items(settings, node, ServicesListCommand.Columns);
            }
            await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
        }
        return ExitCodes.Ok;
    }
}

// ---- jobs, audit, backups ----

internal sealed class JobsListSettings : FundSettings
{
    [CommandOption("--state <STATE>")]
    public string? State { get; init; }

    [CommandOption("--type <TYPE>")]
    public string? Type { get; init; }
}

internal sealed class JobsListCommand : AsyncCommand<JobsListSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, JobsListSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        var query = string.Join('&', new[] { settings.State is { } s ? "state=" + Url.E(s) : null, settings.Type is { } t ? "type=" + Url.E(t) : null }.OfType<string>());
        var node = await api.GetAsync("api/v1/jobs" + (query.Length > 0 ? "?" + query : ""), cancellationToken);
        Output.Items(settings, node, [("ID", i => Output.Text(i, "id")), ("TYPE", i => Output.Text(i, "type")), ("STATE", i => Output.Text(i, "state")), ("ATTEMPTS", i => Output.Text(i, "attempts")), ("ERROR", i => Output.Text(i, "lastError"))]);
        return ExitCodes.Ok;
    }
}

internal sealed class IdSettings : FundSettings
{
    [CommandArgument(0, "<ID>")]
    public string Id { get; init; } = "";
}

internal sealed class JobsRetryCommand : AsyncCommand<IdSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, IdSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        Output.Object(settings, await api.SendJsonAsync(HttpMethod.Post, $"api/v1/jobs/{Url.E(settings.Id)}/retry", null, cancellationToken));
        return ExitCodes.Ok;
    }
}

internal sealed class JobsCancelCommand : AsyncCommand<IdSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, IdSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        Output.Object(settings, await api.SendJsonAsync(HttpMethod.Post, $"api/v1/jobs/{Url.E(settings.Id)}/cancel", null, cancellationToken));
        return ExitCodes.Ok;
    }
}

/// <summary>Exit code 1 when the chain does not verify, so a cron job can alert on it.</summary>
internal sealed class AuditVerifyCommand : AsyncCommand<FundSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, FundSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        var node = await api.GetAsync("api/v1/audit/verify", cancellationToken);
        var valid = node?["valid"]?.GetValue<bool>() == true;
        if (settings.Json)
        {
            Output.Json(node);
        }
        else
        {
            Console.Out.WriteLine(valid
                ? $"the audit chain verifies: {node?["entries"]} entries"
                : $"the audit chain does NOT verify: entry {node?["firstInvalidSeq"]}: {node?["reason"]}");
        }
        return valid ? ExitCodes.Ok : ExitCodes.Failed;
    }
}

internal sealed class BackupsListCommand : AsyncCommand<FundSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, FundSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        var node = await api.GetAsync("api/v1/backups", cancellationToken);
        if (!settings.Json)
        {
            Console.Out.WriteLine($"schedule: {node?["schedule"]?.ToString() ?? "(none)"}   next: {node?["nextRun"]?.ToString() ?? "-"}   last good: {node?["lastSuccess"]?.ToString() ?? "never"}");
        }
        Output.Items(settings, settings.Json ? node : node?["runs"], [("STARTED", i => Output.Text(i, "startedAt")), ("OUTCOME", i => Output.Text(i, "outcome")), ("VERIFIED", i => Output.Text(i, "verified")), ("NAME", i => Output.Text(i, "name")), ("ERROR", i => Output.Text(i, "error"))]);
        return ExitCodes.Ok;
    }
}

internal sealed class BackupsRunCommand : AsyncCommand<FundSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, FundSettings settings, CancellationToken cancellationToken)
    {
        using var api = FundApi.Open(settings.Context);
        Output.Object(settings, await api.SendJsonAsync(HttpMethod.Post, "api/v1/backups", null, cancellationToken));
        return ExitCodes.Ok;
    }
}
