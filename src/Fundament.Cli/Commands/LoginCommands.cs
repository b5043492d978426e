using System.ComponentModel;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Fundament.Cli.Commands;

internal sealed class LoginSettings : CommandSettings
{
    [CommandOption("-s|--server <URL>")]
    [Description("The server's API address, e.g. https://fundament.example.com (default: the context's)")]
    public string? Server { get; init; }

    [CommandOption("-u|--username <NAME>")]
    public string? Username { get; init; }

    [CommandOption("--password-stdin")]
    [Description("Read the password from standard input instead of asking")]
    public bool PasswordFromStdin { get; init; }

    [CommandOption("--otp <CODE>")]
    [Description("The 6-digit code of the authenticator app, when the account has a second factor (asked for otherwise)")]
    public string? Otp { get; init; }

    [CommandOption("--recovery-code <CODE>")]
    [Description("A recovery code instead of --otp")]
    public string? RecoveryCode { get; init; }

    [CommandOption("--api-key-stdin")]
    [Description("Sign in with an API key read from standard input instead of a password")]
    public bool ApiKeyFromStdin { get; init; }

    [CommandOption("--context <NAME>")]
    [Description("The context to create or update (default: the current one, or 'default')")]
    public string? Context { get; init; }
}

/// <summary>
/// <c>fund login</c>: a password (the token pair is stored and refreshed) or an API key, into a
/// named context that becomes the current one. The device flow arrives with browser sign-in.
/// </summary>
internal sealed class LoginCommand : AsyncCommand<LoginSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, LoginSettings settings, CancellationToken cancellationToken)
    {
        var config = CliConfig.Load();
        var name = settings.Context ?? config.Current ?? "default";
        config.Contexts.TryGetValue(name, out var existing);
        var server = settings.Server ?? existing?.Server
            ?? throw new CliException(ExitCodes.Usage, "--server is required for a new context.");
        if (!Uri.TryCreate(server, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new CliException(ExitCodes.Usage, $"--server '{server}' is not an http(s) address.");
        }
        var entry = new CliContext { Server = uri.ToString().TrimEnd('/') };
        if (settings.ApiKeyFromStdin)
        {
            entry.ApiKey = (await Console.In.ReadLineAsync(cancellationToken))?.Trim();
            if (string.IsNullOrEmpty(entry.ApiKey))
            {
                throw new CliException(ExitCodes.Usage, "--api-key-stdin: standard input had no key.");
            }
        }
        else
        {
            entry.Username = settings.Username ?? existing?.Username
                ?? (Console.IsInputRedirected ? throw new CliException(ExitCodes.Usage, "--username is required.") : AnsiConsole.Ask<string>("Username:"));
            var password = settings.PasswordFromStdin
                ? (await Console.In.ReadLineAsync(cancellationToken))?.TrimEnd('\r')
                : Console.IsInputRedirected ? null : AnsiConsole.Prompt(new TextPrompt<string>("Password:").Secret());
            if (string.IsNullOrEmpty(password))
            {
                throw new CliException(ExitCodes.Usage, "no password: give it on standard input with --password-stdin.");
            }
            using var http = FundApi.NewHttpClient(entry.Server);
            HttpResponseMessage response;
            try
            {
                response = await http.PostAsJsonAsync("api/v1/auth/login", new { username = entry.Username, password }, cancellationToken);
            }
            catch (HttpRequestException ex)
            {
                throw new CliException(ExitCodes.Unreachable, $"{entry.Server} cannot be reached: {ex.Message}");
            }
            using (response)
            {
                if (response.IsSuccessStatusCode)
                {
                    FundApi.Store(entry, await FundApi.ReadJsonAsync(response, cancellationToken));
                }
                else if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized
                    && response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                    && await FundApi.ReadJsonAsync(response, cancellationToken) is { } problem
                    && problem["type"]?.ToString() == "https://fundament.dev/problems/mfa-required")
                {
                    FundApi.Store(entry, await SecondFactorAsync(http, problem, settings, cancellationToken));
                }
                else
                {
                    throw await FundApi.ProblemAsync(response, cancellationToken);
                }
            }
        }
        config.Contexts[name] = entry;
        config.Current = name;
        config.Save();

        // Proves the credentials and says who this is.
        using var api = FundApi.Open(name);
        var me = await api.GetAsync("api/v1/me", cancellationToken);
        await Console.Error.WriteLineAsync($"fund: logged in to {entry.Server} as {me?["name"] ?? me?["username"] ?? me?["id"]} (context '{name}').");
        return ExitCodes.Ok;
    }

    /// <summary>The second step: a code (or recovery code) for the challenge; enrols a factor first when a role requires one (interactively).</summary>
    private static async Task<JsonNode> SecondFactorAsync(HttpClient http, JsonNode problem, LoginSettings settings, CancellationToken cancellationToken)
    {
        var token = problem["mfa_token"]!.GetValue<string>();
        if (problem["enrollment_required"]?.GetValue<bool>() == true)
        {
            if (Console.IsInputRedirected)
            {
                throw new CliException(ExitCodes.Unauthorized, "a role of this account requires a second factor, and it has none yet: run `fund login` in a terminal to enrol one.");
            }
            using var enrolled = await http.PostAsJsonAsync("api/v1/auth/mfa/enroll", new Dictionary<string, string> { ["mfa_token"] = token }, cancellationToken);
            if (!enrolled.IsSuccessStatusCode)
            {
                throw await FundApi.ProblemAsync(enrolled, cancellationToken);
            }
            var enrolment = await FundApi.ReadJsonAsync(enrolled, cancellationToken);
            AnsiConsole.MarkupLine("A second factor is required. Add this to your authenticator app:");
            AnsiConsole.MarkupLine($"  secret: [bold]{Markup.Escape(enrolment["secret"]!.GetValue<string>())}[/]");
            AnsiConsole.MarkupLine($"  or:     {Markup.Escape(enrolment["otpauthUri"]!.GetValue<string>())}");
        }
        var code = settings.Otp;
        if (code is null && settings.RecoveryCode is null)
        {
            code = Console.IsInputRedirected
                ? throw new CliException(ExitCodes.Unauthorized, "this account has a second factor: give the code with --otp (or --recovery-code).")
                : AnsiConsole.Ask<string>("Code from the authenticator app:");
        }
        using var response = await http.PostAsJsonAsync("api/v1/auth/login/mfa",
            new Dictionary<string, string?> { ["mfa_token"] = token, ["code"] = settings.RecoveryCode is null ? code : null, ["recovery_code"] = settings.RecoveryCode }, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw await FundApi.ProblemAsync(response, cancellationToken);
        }
        var tokens = await FundApi.ReadJsonAsync(response, cancellationToken);
        if (tokens["recovery_codes"] is JsonArray codes)
        {
            await Console.Error.WriteLineAsync("fund: recovery codes (shown once; keep them apart from the device):");
            foreach (var c in codes)
            {
                await Console.Error.WriteLineAsync($"  {c}");
            }
        }
        return tokens;
    }
}

internal sealed class ContextListCommand : Command<FundSettings>
{
    public override int Execute(CommandContext context, FundSettings settings, CancellationToken cancellationToken)
    {
        var config = CliConfig.Load();
        var list = new JsonArray(config.Contexts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => (JsonNode)new JsonObject
        {
            ["name"] = c.Key,
            ["current"] = c.Key == config.Current,
            ["server"] = c.Value.Server,
            ["user"] = c.Value.Username ?? (c.Value.ApiKey is null ? null : "(api key)"),
        }).ToArray());
        Output.Items(settings, list, [("", i => i["current"]!.GetValue<bool>() ? "*" : ""), ("NAME", i => Output.Text(i, "name")), ("SERVER", i => Output.Text(i, "server")), ("USER", i => Output.Text(i, "user"))]);
        return ExitCodes.Ok;
    }
}

internal sealed class ContextUseSettings : CommandSettings
{
    [CommandArgument(0, "<NAME>")]
    public string Name { get; init; } = "";
}

internal sealed class ContextUseCommand : Command<ContextUseSettings>
{
    public override int Execute(CommandContext context, ContextUseSettings settings, CancellationToken cancellationToken)
    {
        var config = CliConfig.Load();
        if (!config.Contexts.ContainsKey(settings.Name))
        {
            throw new CliException(ExitCodes.NotFound, $"there is no context '{settings.Name}': `fund context ls` lists them.");
        }
        config.Current = settings.Name;
        config.Save();
        return ExitCodes.Ok;
    }
}
