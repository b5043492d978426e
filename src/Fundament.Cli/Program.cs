using System.Runtime.InteropServices;
using Fundament.Cli.Commands;
using Spectre.Console.Cli;

namespace Fundament.Cli;

/// <summary>
/// <c>fund</c>, the Fundament command line. Every failure is one line on stderr
/// (<c>fund: ...</c>) with an exit code from <see cref="ExitCodes"/>.
/// </summary>
internal static class Program
{
    /// <summary>Commands and their sub-commands, for completion scripts.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Tree = new Dictionary<string, string[]>
    {
        ["login"] = [],
        ["context"] = ["ls", "use"],
        ["secrets"] = ["ls", "get", "put", "rm"],
        ["config"] = ["get", "set", "history", "rollback"],
        ["services"] = ["ls", "watch"],
        ["media"] = ["upload", "ls", "get", "rm"],
        ["jobs"] = ["ls", "retry", "cancel"],
        ["audit"] = ["verify"],
        ["backups"] = ["ls", "run"],
        ["completion"] = [],
    };

    public static async Task<int> Main(string[] args)
    {
        using var interrupted = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            // The first Ctrl-C stops cleanly (an upload keeps what the server has); a second one kills.
            e.Cancel = !interrupted.IsCancellationRequested;
            interrupted.Cancel();
        };
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            interrupted.Cancel();
        });

        var app = new CommandApp();
        app.Configure(c =>
        {
            c.SetApplicationName("fund");
            c.PropagateExceptions();
            c.AddCommand<LoginCommand>("login").WithDescription("Log in to a server (password or API key) and make the context current");
            c.AddBranch("context", b =>
            {
                b.SetDescription("Named servers and their credentials");
                b.AddCommand<ContextListCommand>("ls");
                b.AddCommand<ContextUseCommand>("use");
            });
            c.AddBranch("secrets", b =>
            {
                b.SetDescription("Secrets in the vault");
                b.AddCommand<SecretsListCommand>("ls");
                b.AddCommand<SecretsGetCommand>("get");
                b.AddCommand<SecretsPutCommand>("put");
                b.AddCommand<SecretsRemoveCommand>("rm");
            });
            c.AddBranch("config", b =>
            {
                b.SetDescription("Live configuration");
                b.AddCommand<ConfigGetCommand>("get");
                b.AddCommand<ConfigSetCommand>("set");
                b.AddCommand<ConfigHistoryCommand>("history");
                b.AddCommand<ConfigRollbackCommand>("rollback");
            });
            c.AddBranch("services", b =>
            {
                b.SetDescription("Registered services and their health");
                b.AddCommand<ServicesListCommand>("ls");
                b.AddCommand<ServicesWatchCommand>("watch");
            });
            c.AddBranch("media", b =>
            {
                b.SetDescription("Media assets: resumable uploads, listing, download, trash");
                b.AddCommand<MediaUploadCommand>("upload");
                b.AddCommand<MediaListCommand>("ls");
                b.AddCommand<MediaGetCommand>("get");
                b.AddCommand<MediaRemoveCommand>("rm");
            });
            c.AddBranch("jobs", b =>
            {
                b.SetDescription("The durable job queue");
                b.AddCommand<JobsListCommand>("ls");
                b.AddCommand<JobsRetryCommand>("retry");
                b.AddCommand<JobsCancelCommand>("cancel");
            });
            c.AddBranch("audit", b =>
            {
                b.SetDescription("The audit log");
                b.AddCommand<AuditVerifyCommand>("verify");
            });
            c.AddBranch("backups", b =>
            {
                b.SetDescription("Backups the server takes (fundament backup/restore run on the server's machine)");
                b.AddCommand<BackupsListCommand>("ls");
                b.AddCommand<BackupsRunCommand>("run");
            });
            c.AddCommand<CompletionCommand>("completion").WithDescription("Print a completion script: bash or zsh");
        });

        try
        {
            return await app.RunAsync(args, interrupted.Token);
        }
        catch (CliException ex)
        {
            await Console.Error.WriteLineAsync($"fund: {ex.Message}");
            return ex.ExitCode;
        }
        catch (OperationCanceledException) when (interrupted.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("fund: interrupted; run the same command again to resume an upload.");
            return ExitCodes.Interrupted;
        }
        catch (CommandAppException ex)
        {
            await Console.Error.WriteLineAsync($"fund: {ex.Message}");
            return ExitCodes.Usage;
        }
    }
}
