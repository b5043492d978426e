namespace Fundament.Identity;

/// <summary>
/// <c>fundament admin recover</c>, for the host's command line: gives an administrator back when
/// none can log in. See the implementation's remarks for what it changes.
/// </summary>
public interface IAdminRecovery
{
    /// <summary>Recovers (or creates) <paramref name="username"/> as an enabled administrator with <paramref name="password"/>, or a generated one when null.</summary>
    /// <exception cref="RecoveryRefusedException">The password breaks the password policy.</exception>
    Task<AdminRecoveryResult> RecoverAsync(string username, string? password, CancellationToken cancellationToken);
}

/// <param name="Password">The new password: shown to the operator once when <paramref name="Generated"/>.</param>
public sealed record AdminRecoveryResult(string UserId, string Password, bool Created, bool Generated);

/// <summary>The recovery was refused; the message says why, for the operator.</summary>
public sealed class RecoveryRefusedException(string message) : Exception(message);
