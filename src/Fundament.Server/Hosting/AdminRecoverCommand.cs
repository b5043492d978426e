using Fundament.Identity;

namespace Fundament.Server.Hosting;

/// <summary>
/// <c>fundament admin recover [--username NAME] [--password-stdin] [server options]</c>: gives an
/// administrator back (see <see cref="IAdminRecovery"/>) using the same settings the server would
/// start with, without starting it. Prints the new password once when it was generated.
/// </summary>
internal sealed class AdminRecoverCommand
{
    public const string Usage = "usage: fundament admin recover [--username NAME] [--password-stdin] [--data-dir DIR | other server settings]";

    public string Username { get; private init; } = "admin";

    public bool PasswordFromStdin { get; private init; }

    /// <summary>What is left for the host's configuration (settings such as <c>--data-dir</c>).</summary>
    public string[] HostArgs { get; private init; } = [];

    /// <summary>Null when <paramref name="args"/> is not this command; throws <see cref="StartupException"/> on bad usage.</summary>
    public static AdminRecoverCommand? Parse(string[] args)
    {
        if (args is not ["admin", ..])
        {
            return null;
        }
        if (args is not [_, "recover", ..])
        {
            throw new StartupException(Usage);
        }
        var username = "admin";
        var stdin = false;
        var rest = new List<string>();
        for (var i = 2; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--username" when i + 1 < args.Length && args[i + 1].Length > 0 && !args[i + 1].StartsWith("--", StringComparison.Ordinal):
                    username = args[++i];
                    break;
                case "--username":
                    throw new StartupException(Usage);
                case "--password-stdin":
                    stdin = true;
                    break;
                default:
                    rest.Add(args[i]);
                    break;
            }
        }
        return new AdminRecoverCommand { Username = username, PasswordFromStdin = stdin, HostArgs = [.. rest, "--Fundament:Cluster:HeartbeatEnabled=false"] };
    }

    public async Task<int> RunAsync(IServiceProvider services, TextReader input, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var password = PasswordFromStdin ? (await input.ReadLineAsync(cancellationToken))?.TrimEnd('\r') : null;
        if (PasswordFromStdin && string.IsNullOrEmpty(password))
        {
            await error.WriteLineAsync("fundament: admin recover: --password-stdin given but standard input had no password");
            return 2;
        }
        // The schema and the built-in roles, exactly as a starting server brings them up.
        await new FundamentInitializer(services).StartingAsync(cancellationToken);
        AdminRecoveryResult result;
        try
        {
            result = await services.GetRequiredService<IAdminRecovery>().RecoverAsync(Username, password, cancellationToken);
        }
        catch (RecoveryRefusedException ex)
        {
            await error.WriteLineAsync($"fundament: admin recover: {ex.Message}");
            return 2;
        }
        await output.WriteLineAsync(result.Created
            ? $"fundament: created '{Username}' with the admin role."
            : $"fundament: '{Username}' is enabled, unlocked and holds the admin role; its sessions and API keys were revoked.");
        if (result.Generated)
        {
            await output.WriteLineAsync($"  password: {result.Password}");
            await output.WriteLineAsync("  (shown once; change it after logging in: POST /api/v1/me/password)");
        }
        return 0;
    }
}
