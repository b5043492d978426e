using System.Security.Cryptography;
using Fundament.Identity.Login;
using Fundament.Identity.Passwords;
using Fundament.Identity.Roles;
using Fundament.Identity.Sessions;
using Fundament.Identity.Users;

namespace Fundament.Identity.Bootstrap;

/// <summary>
/// <c>fundament admin recover</c>: the way back in when no administrator can log in (password
/// lost, account disabled or locked out, admin role removed by mistake). It needs what running
/// the server needs (the database settings and the master key), so whoever can use it could
/// already start the server: it is an operator's tool, not a remote backdoor. The user gets a new
/// password (random unless one is given), is enabled, unlocked and holds the admin role; every
/// session and API key it had is revoked; the audit log records it. A missing user is created.
/// </summary>
internal sealed class AdminRecovery(
    Fundament.Core.Storage.IDatabase database, UserStore users, PasswordHasher hasher, PasswordPolicy policy, SessionStore sessions, ApiKeys.ApiKeyStore apiKeys, LoginThrottle throttle, IAuditLog audit,
    Mfa.MfaStore mfa) : IAdminRecovery
{
    /// <summary>Throws <see cref="RecoveryRefusedException"/> when <paramref name="password"/> breaks the password policy.</summary>
    public async Task<AdminRecoveryResult> RecoverAsync(string username, string? password, CancellationToken cancellationToken)
    {
        var generated = string.IsNullOrEmpty(password);
        password = generated ? RandomNumberGenerator.GetString("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", 24) : password;
        if (policy.Check(password, username) is { } problem)
        {
            throw new RecoveryRefusedException($"the password is not acceptable: {problem}");
        }
        var hash = hasher.Hash(password!);
        var (user, created) = await database.InUnitOfWorkAsync(async () =>
        {
            var user = await users.FindByUsernameAsync(username, cancellationToken);
            var created = false;
            if (user is null)
            {
                user = await users.CreateAsync(username, null, hash, [RoleStore.Admin], cancellationToken)
                    ?? throw new InvalidOperationException($"the user '{username}' appeared meanwhile; run the command again");
                created = true;
            }
            else
            {
                var roles = user.Roles.Contains(RoleStore.Admin, StringComparer.Ordinal) ? user.Roles : [.. user.Roles, RoleStore.Admin];
                await users.UpdateAsync(user.Id, new UserChanges(PasswordHash: hash, Disabled: false, Roles: roles), cancellationToken);
                // Whoever locked the owner out may hold its sessions or keys: all of them end.
                await sessions.RevokeAllAsync(user.Id, "admin recovery", cancellationToken);
                await apiKeys.RevokeAllAsync(user.Id, cancellationToken);
                // Recovery is for an owner who lost access, a second factor included: it goes, and is enrolled again.
                await mfa.ResetAsync(user.Id, cancellationToken);
            }
            await throttle.ResetAsync(username, cancellationToken);
            await audit.AppendAsync(new AuditEvent("user.recover", AuditOutcome.Success)
            {
                Actor = "cli:admin-recover",
                Target = $"user:{user.Id}",
                Details = new Dictionary<string, string> { ["created"] = created ? "true" : "false", ["roles"] = RoleStore.Admin },
            }, cancellationToken);
            return (user, created);
        }, cancellationToken);
        return new AdminRecoveryResult(user.Id, password!, created, generated);
    }
}
