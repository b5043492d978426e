using Fundament.Backup;

namespace Fundament.Server.Hosting;

/// <summary>
/// <c>fundament backup --to LOCATION [--include-key]</c>, <c>fundament backup verify LOCATION</c>,
/// <c>fundament backup ls LOCATION</c> and <c>fundament restore --from LOCATION</c>: run against the
/// same settings the server starts with (see <see cref="BackupService"/>), then exit.
/// Exit codes: 0 done, 1 the backup, restore or verification failed, 2 wrong usage.
/// </summary>
internal sealed class BackupCommand
{
    public const string Usage = """
        usage: fundament backup --to <folder|s3://bucket/prefix> [--include-key] [server settings]
               fundament backup verify <location> [--passphrase-stdin] [server settings]
               fundament backup ls <location> [server settings]
               fundament restore --from <location> [--data-dir DIR] [--passphrase-stdin] [server settings]
          --include-key       also store the master key, encrypted with a passphrase read from standard input
          --passphrase-stdin  read the passphrase of a backup's master key from standard input
        """;

    private enum Verb
    {
        Backup,
        Verify,
        List,
        Restore,
    }

    private Verb _verb;
    private string _location = "";
    private bool _includeKey;
    private bool _passphraseFromStdin;

    public string[] HostArgs { get; private init; } = [];

    /// <summary>Null when <paramref name="args"/> is not this command; throws <see cref="StartupException"/> on bad usage.</summary>
    public static BackupCommand? Parse(string[] args)
    {
        if (args is not ["backup" or "restore", ..])
        {
            return null;
        }
        var command = new BackupCommand();
        var rest = new List<string>();
        var i = 1;
        if (args[0] == "restore")
        {
            command._verb = Verb.Restore;
        }
        else if (args is [_, "verify" or "ls", ..])
        {
            command._verb = args[1] == "verify" ? Verb.Verify : Verb.List;
            if (args.Length < 3 || args[2].StartsWith("--", StringComparison.Ordinal))
            {
                throw new StartupException(Usage);
            }
            command._location = args[2];
            i = 3;
        }
        for (; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--to" when command._verb == Verb.Backup && i + 1 < args.Length:
                case "--from" when command._verb == Verb.Restore && i + 1 < args.Length:
                    command._location = args[++i];
                    break;
                case "--include-key" when command._verb == Verb.Backup:
                    command._includeKey = true;
                    break;
                case "--passphrase-stdin" when command._verb is Verb.Restore or Verb.Verify:
                    command._passphraseFromStdin = true;
                    break;
                case "--to" or "--from" or "--include-key" or "--passphrase-stdin" or "-h" or "--help":
                    throw new StartupException(Usage);
                default:
                    rest.Add(args[i]);
                    break;
            }
        }
        if (command._location.Length == 0)
        {
            throw new StartupException(Usage);
        }
        // Every module's stores, whatever roles the settings give this node; nothing started.
        return new BackupCommand
        {
            _verb = command._verb,
            _location = command._location,
            _includeKey = command._includeKey,
            _passphraseFromStdin = command._passphraseFromStdin,
            HostArgs = [.. rest, "--Fundament:Roles=all", "--Fundament:Cluster:HeartbeatEnabled=false"],
        };
    }

    public async Task<int> RunAsync(IServiceProvider services, TextReader input, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var backups = services.GetRequiredService<BackupService>();
        // Ctrl-C or SIGTERM stops cleanly: a backup removes what it wrote, a restore the objects it wrote.
        using var interrupted = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = !interrupted.IsCancellationRequested;
            interrupted.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            interrupted.Cancel();
        });
        cancellationToken = interrupted.Token;
        var verb = _verb == Verb.Restore ? "restore" : "backup";
        try
        {
            switch (_verb)
            {
                case Verb.Backup:
                {
                    string? passphrase = null;
                    if (_includeKey)
                    {
                        passphrase = (await input.ReadLineAsync(cancellationToken))?.TrimEnd('\r');
                        if (string.IsNullOrEmpty(passphrase))
                        {
                            await error.WriteLineAsync("fundament: backup: --include-key reads the passphrase from standard input, which had none");
                            return 2;
                        }
                    }
                    var result = await backups.BackupAsync(_location, passphrase, cancellationToken);
                    await output.WriteLineAsync($"fundament: backup {result.Name} taken in {result.Took.TotalSeconds:0.0} s: {result.Location}");
                    await output.WriteLineAsync($"  {result.Blobs} objects, {result.Bytes} bytes{(_includeKey ? "; the master key is included, encrypted with the passphrase" : "; the master key is NOT included: keep it safe separately")}");
                    if (result.Missing.Count > 0)
                    {
                        await output.WriteLineAsync($"  {result.Missing.Count} objects were deleted while it ran (listed in backup.json)");
                    }
                    return 0;
                }
                case Verb.List:
                {
                    foreach (var name in await backups.ListAsync(_location, cancellationToken))
                    {
                        await output.WriteLineAsync(name);
                    }
                    return 0;
                }
                case Verb.Verify:
                {
                    var report = await backups.VerifyAsync(_location, Passphrase(input), services.GetRequiredService<IScratchHostFactory>(), cancellationToken);
                    await output.WriteLineAsync($"fundament: backup {report.Name}:");
                    foreach (var check in report.Checks)
                    {
                        await output.WriteLineAsync($"  {(check.Passed ? "ok  " : "FAIL")} {check.Name}: {check.Detail}");
                    }
                    await output.WriteLineAsync(report.Passed ? "fundament: the backup verifies." : "fundament: the backup does NOT verify.");
                    return report.Passed ? 0 : 1;
                }
                default:
                {
                    var result = await backups.RestoreAsync(_location, Passphrase(input), cancellationToken);
                    await output.WriteLineAsync($"fundament: restored backup {result.Name} ({result.Blobs} objects).");
                    if (result.KeyFile is not null)
                    {
                        await output.WriteLineAsync($"  the master key from the backup is in {result.KeyFile} (mode 0600); with PostgreSQL, point Fundament:MasterKeyFile at it.");
                    }
                    if (result.PreviousKeysFile is not null)
                    {
                        await output.WriteLineAsync($"  the backup was taken during a master key rotation: its earlier keys are in {result.PreviousKeysFile} (one per line);");
                        await output.WriteLineAsync("  give them as Fundament:PreviousMasterKeys:0, :1 ... and run POST /api/v1/vault/rotate-master-key again.");
                    }
                    if (result.Missing.Count > 0)
                    {
                        await output.WriteLineAsync($"  {result.Missing.Count} objects were deleted while the backup ran and are not restored: {string.Join(", ", result.Missing.Take(5))}");
                    }
                    await output.WriteLineAsync("  start the server with the same settings to serve it.");
                    return 0;
                }
            }
        }
        catch (BackupException ex)
        {
            await error.WriteLineAsync($"fundament: {verb}: {ex.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (interrupted.IsCancellationRequested)
        {
            await error.WriteLineAsync($"fundament: {verb}: interrupted; nothing was left half-written.");
            return 130;
        }
        catch (Exception ex) when (ex is StartupException or IOException or UnauthorizedAccessException or System.Data.Common.DbException
            or Amazon.Runtime.AmazonServiceException or Amazon.Runtime.AmazonClientException or HttpRequestException or System.Security.Cryptography.CryptographicException)
        {
            // The storage, a bucket, the database or the disk said no: one line, not a stack trace.
            await error.WriteLineAsync($"fundament: {verb}: {ex.Message}");
            return 1;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private Func<string?> Passphrase(TextReader input) => () => _passphraseFromStdin ? input.ReadLine()?.TrimEnd('\r') : null;
}
