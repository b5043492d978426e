using System.Security.Cryptography;
using Fundament.Identity.Passwords;
using Fundament.Identity.Roles;
using Fundament.Identity.Users;

namespace Fundament.Identity.Bootstrap;

/// <summary>
/// On the first start against an empty user table, creates <c>admin</c> with the configured
/// password or a random one. A random password is handed to the start-up banner to print once
/// on the console (not through the logger, so it does not travel to log collectors).
/// </summary>
internal sealed partial class BootstrapAdmin(
    Fundament.Core.Storage.IDatabase database,
    UserStore users,
    PasswordHasher hasher,
    PasswordPolicy policy,
    IAuditLog audit,
    IOptions<IdentityOptions> options,
    ILogger<BootstrapAdmin> logger) : IStartupTask, IBootstrapAdmin
{
    public const string Username = "admin";

    string IBootstrapAdmin.Username => Username;

    public int Order => 10;

    /// <summary>The generated password, until the banner has printed it.</summary>
    public string? GeneratedPassword { get; private set; }

    public string? TakeGeneratedPassword()
    {
        var password = GeneratedPassword;
        GeneratedPassword = null;
        return password;
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (await users.CountAsync(cancellationToken) > 0)
        {
            return;
        }
        var configured = options.Value.BootstrapAdminPassword;
        string password;
        if (!string.IsNullOrEmpty(configured))
        {
            if (policy.Check(configured, Username) is { } problem)
            {
                throw new StartupException($"{IdentityOptions.SectionName}:BootstrapAdminPassword is not acceptable: {problem}");
            }
            password = configured;
        }
        else
        {
            password = RandomPassword();
        }
        var hash = hasher.Hash(password);
        var user = await database.InUnitOfWorkAsync(async () =>
        {
            var user = await users.CreateAsync(Username, null, hash, [RoleStore.Admin], cancellationToken);
            if (user is not null)
            {
                await audit.AppendAsync(new AuditEvent("user.bootstrap", AuditOutcome.Success) { Actor = "system", Target = $"user:{user.Id}" }, cancellationToken);
            }
            return user;
        }, cancellationToken);
        if (user is null)
        {
            // Another replica won the race and created it.
            return;
        }
        if (string.IsNullOrEmpty(configured))
        {
            GeneratedPassword = password;
        }
        LogCreated(logger, Username);
    }

    private static string RandomPassword()
    {
        const string alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        return RandomNumberGenerator.GetString(alphabet, 24);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Created the bootstrap user '{Username}' on an empty database")]
    private static partial void LogCreated(ILogger logger, string username);
}
